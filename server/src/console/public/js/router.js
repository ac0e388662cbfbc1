/* global window */
// Hash routes (#/fleet, #/devices/<id>, #/rollouts, #/rollouts/<id>): one HTML page, no server routes per view.

/**
 * Starts routing: `routes` is a list of [pattern, render] where pattern is like '/devices/:id'.
 * `render(params)` may return a cleanup function, called before the next route renders.
 */
export function startRouter(routes, { fallback, onRoute }) {
  let cleanup = null;
  let generation = 0;
  const compiled = routes.map(([pattern, render]) => {
    const names = [];
    const re = new RegExp('^' + pattern.replace(/:([a-zA-Z]+)/g, (_, n) => (names.push(n), '([^/]+)')) + '$');
    return { re, names, render, pattern };
  });

  async function go() {
    const path = window.location.hash.replace(/^#/, '') || fallback;
    const mine = ++generation;
    if (cleanup) {
      const c = cleanup;
      cleanup = null;
      c();
    }
    for (const r of compiled) {
      const m = r.re.exec(path);
      if (!m) continue;
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
      onRoute?.(r.pattern);
      const result = await r.render(params);
      // A later navigation may have started while this page was loading: drop what this one opened.
      if (mine !== generation) result?.();
      else cleanup = result ?? null;
      return;
    }
    window.location.hash = `#${fallback}`;
  }

  window.addEventListener('hashchange', go);
  go();
  return {
    stop() {
      window.removeEventListener('hashchange', go);
      generation++;
      if (cleanup) cleanup();
      cleanup = null;
    },
  };
}

export function link(path) {
  return '#' + path.split('/').map((p) => encodeURIComponent(p)).join('/');
}
