import type { FastifyInstance } from 'fastify';
import { buildLocalApi, type LocalApiOptions } from './build-local-api.ts';

export interface LocalApiListenOptions extends LocalApiOptions {
  /** Default 127.0.0.1: the API is for applications on this device, not the network. */
  host?: string;
  /** Default 8000 (Triton's HTTP port); 0 picks a free one. */
  port?: number;
}

export interface RunningLocalApi {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly port: number;
  /** Stops listening and waits for open requests. Safe to call twice. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startLocalApi(opts: LocalApiListenOptions): Promise<RunningLocalApi> {
  const app = buildLocalApi(opts);
  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: opts.port ?? 8000 });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= app.close());
  return {
    app,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close,
    [Symbol.asyncDispose]: close,
  };
}
