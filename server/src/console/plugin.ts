import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where the console's files live: plain HTML, CSS and ES modules, served as they are (no build step). */
export const CONSOLE_ROOT = fileURLToPath(new URL('./public/', import.meta.url));

/** The only files served, by their path under /console/: nothing else on disk is reachable. */
export const CONSOLE_FILES: readonly string[] = [
  'index.html',
  'style.css',
  'js/app.js',
  'js/api.js',
  'js/sse.js',
  'js/dom.js',
  'js/format.js',
  'js/router.js',
  'js/roles.js',
  'js/pages/signin.js',
  'js/pages/fleet.js',
  'js/pages/device.js',
  'js/pages/rollouts.js',
  'js/pages/rollout.js',
  'js/pages/funnel.js',
];

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

/**
 * Everything the console loads comes from this server, and nothing runs inline, so an injected
 * string can neither run script nor load anything from elsewhere.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache');
}

export interface ConsoleOptions {
  /** Also redirect `/` to `/console/` (the server has no other use for `/`). */
  redirectRoot?: boolean;
}

/**
 * Serves the web console at /console/. Files are read once at registration (a few kilobytes), so a
 * request never touches the disk and no request path is ever joined onto a file system path.
 * The console itself signs in with an API token and calls the REST API like any other client.
 */
export async function consoleRoutes(app: FastifyInstance, opts: ConsoleOptions = {}): Promise<void> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of CONSOLE_FILES) {
    const ext = name.slice(name.lastIndexOf('.') + 1);
    files.set(name, { body: await readFile(join(CONSOLE_ROOT, name)), type: TYPES[ext]! });
  }
  const hide = { hide: true };

  app.get('/console', { schema: hide }, async (_request, reply) => reply.redirect('/console/'));
  app.get('/console/', { schema: hide }, async (_request, reply) => {
    const f = files.get('index.html')!;
    return secure(reply).type(f.type).send(f.body);
  });
  app.get<{ Params: { '*': string } }>('/console/*', { schema: hide }, async (request, reply) => {
    const f = files.get(request.params['*']);
    if (!f) return secure(reply).status(404).send({ code: 'FLT_NOT_FOUND', message: 'no such console file' });
    return secure(reply).type(f.type).send(f.body);
  });
  if (opts.redirectRoot ?? true) app.get('/', { schema: hide }, async (_request, reply) => reply.redirect('/console/'));
}
