/* global fetch, sessionStorage, window, CustomEvent, URLSearchParams */
// REST client of the console: every call carries the API token from the sign-in screen.

const TOKEN_KEY = 'flotilla.console.token';

/** An error answer from the server, with its stable FLT_ code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The token lives in sessionStorage: gone when the tab closes, never sent anywhere but this server. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

function headers(extra = {}) {
  const token = session.token;
  return token ? { authorization: `Bearer ${token}`, ...extra } : { ...extra };
}

async function failure(res) {
  let code = 'FLT_HTTP_' + res.status;
  let message = res.statusText || 'request failed';
  try {
    const body = await res.json();
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // Not JSON: keep the status line.
  }
  if (res.status === 401) {
    session.clear();
    window.dispatchEvent(new CustomEvent('flotilla:signed-out', { detail: { message } }));
  }
  return new ApiError(res.status, code, message);
}

/** Calls the REST API; resolves with the JSON body, rejects with an ApiError. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  return res.status === 204 ? null : res.json();
}

/** Opens a server-sent event stream with the Bearer header (EventSource cannot send one). */
export async function openStream(path, signal) {
  const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return res;
}

/** Builds a query string from the defined entries (arrays repeat the key). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
