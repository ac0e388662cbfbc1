/* global document, window */
// Console entry: sign-in, then the pages, with the signed-in role deciding which buttons work.
import { api, session } from './api.js';
import { replace } from './dom.js';
import { startRouter } from './router.js';
import { renderSignIn } from './pages/signin.js';
import { renderFleet } from './pages/fleet.js';
import { renderDevice } from './pages/device.js';
import { renderRollouts } from './pages/rollouts.js';
import { renderRollout } from './pages/rollout.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let router = null;

function showSignedOut(message) {
  router?.stop();
  router = null;
  nav.hidden = true;
  who.hidden = true;
  document.body.dataset.role = '';
  renderSignIn(main, { message, onSignedIn: boot });
}

async function boot() {
  if (!session.token) return showSignedOut();
  let me;
  try {
    me = await api('/v1/me');
  } catch (err) {
    session.clear();
    return showSignedOut(err.status === 401 ? 'That token is not valid (or was revoked).' : err.message);
  }
  document.getElementById('who-name').textContent = me.name;
  document.getElementById('who-role').textContent = me.role;
  document.body.dataset.role = me.role;
  nav.hidden = false;
  who.hidden = false;
  const ctx = { me };
  router = startRouter(
    [
      ['/fleet', () => renderFleet(main, ctx)],
      ['/devices/:id', (p) => renderDevice(main, ctx, p.id)],
      ['/rollouts', () => renderRollouts(main, ctx)],
      ['/rollouts/:id', (p) => renderRollout(main, ctx, p.id)],
    ],
    {
      fallback: '/fleet',
      onRoute: (pattern) => {
        for (const a of nav.querySelectorAll('a')) a.classList.toggle('current', pattern.startsWith('/' + a.dataset.nav) || (a.dataset.nav === 'fleet' && pattern.startsWith('/devices')));
      },
    },
  );
}

document.getElementById('sign-out').addEventListener('click', () => {
  session.clear();
  replace(main);
  showSignedOut('Signed out.');
});
window.addEventListener('flotilla:signed-out', (e) => showSignedOut(e.detail?.message ?? 'Signed out.'));

boot();
