import { api, session } from '../api.js';
import { h, replace, notice } from '../dom.js';

/** The sign-in screen: an API token, checked against GET /v1/me before it is kept. */
export function renderSignIn(main, { message, onSignedIn }) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: false, placeholder: 'flta_…' });
  const status = h('div', { id: 'signin-status' }, message ? notice(message, 'info') : null);
  const form = h(
    'form',
    {
      id: 'signin',
      class: 'card signin',
      on: {
        submit: async (e) => {
          e.preventDefault();
          const token = input.value.trim();
          if (!token) return;
          session.set(token);
          try {
            await api('/v1/me');
          } catch (err) {
            session.clear();
            replace(status, notice(err.status === 401 ? 'That token is not valid (or was revoked).' : err.message));
            return;
          }
          onSignedIn();
        },
      },
    },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API token (admin, operator or viewer). It is kept in this tab only.'),
    h('label', { htmlFor: 'token' }, 'API token'),
    input,
    h('button', { type: 'submit', id: 'signin-submit' }, 'Sign in'),
    status,
  );
  replace(main, form);
  input.focus();
}
