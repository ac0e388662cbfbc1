import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

/** A fault to inject into the next artifact responses (each applies once, then is cleared). */
export interface ArtifactFault {
  /** Close the connection after this many body bytes of the next response. */
  cutAfter?: number;
  /** Send this many body bytes of the next response, then go silent (the connection stays open). */
  stallAfter?: number;
  /** Append this many extra bytes to full responses (a server that sends more than signed). */
  extraBytes?: number;
  /** Send the next response with chunked transfer coding instead of a Content-Length. */
  chunked?: boolean;
}

/**
 * A tiny stand-in for the control server's device endpoints, for unit tests of the agent's OTA
 * code: `/v1/keys`, `/v1/keys/rotations`, `/v1/device/releases/:name/:version` and
 * `/v1/artifacts/:sha256` with HTTP Range. It counts the artifact bytes it sent and can cut, stall
 * or overrun responses on demand. Not the real server: the end-to-end tests use that.
 */
export class TestArtifactServer {
  readonly artifacts = new Map<string, Buffer>();
  readonly releases = new Map<string, unknown>();
  keys: unknown[] = [];
  rotations: Array<{ seq: number; appliedAt: number; rotation: unknown }> = [];
  faults: ArtifactFault[] = [];
  bytesSent = 0;
  artifactRequests: Array<{ range: string | undefined }> = [];
  #server: Server;
  #stalled = new Set<ServerResponse>();
  url = '';

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  static async start(): Promise<TestArtifactServer> {
    const s = new TestArtifactServer();
    await new Promise<void>((resolve) => s.#server.listen(0, '127.0.0.1', resolve));
    s.url = `http://127.0.0.1:${(s.#server.address() as AddressInfo).port}`;
    onTestFinished(() => s.close());
    return s;
  }

  release(model: string, version: string, body: { release: unknown; metadata: unknown }): void {
    this.releases.set(`${model}/${version}`, body);
  }

  async close(): Promise<void> {
    for (const res of this.#stalled) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v1/keys') return this.#json(res, 200, { keys: this.keys, serverKeyId: null, rotations: this.rotations.length });
    if (url.pathname === '/v1/keys/rotations') {
      const after = Number(url.searchParams.get('after') ?? 0);
      return this.#json(res, 200, { items: this.rotations.filter((r) => r.seq > after) });
    }
    const rel = /^\/v1\/device\/releases\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (rel) {
      if (!req.headers.authorization?.startsWith('Basic ')) return this.#json(res, 401, { code: 'FLT_UNAUTHENTICATED' });
      const body = this.releases.get(`${rel[1]}/${rel[2]}`);
      return body ? this.#json(res, 200, body) : this.#json(res, 403, { code: 'FLT_ARTIFACT_NOT_ENTITLED' });
    }
    const art = /^\/v1\/artifacts\/([0-9a-f]{64})$/.exec(url.pathname);
    if (!art) return this.#json(res, 404, { code: 'FLT_NOT_FOUND' });
    const bytes = this.artifacts.get(art[1]!);
    if (!bytes) return this.#json(res, 404, { code: 'FLT_ARTIFACT_NOT_FOUND' });
    this.artifactRequests.push({ range: req.headers.range });
    const fault = this.faults.shift() ?? {};
    let body = bytes;
    let status = 200;
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', etag: `"${art[1]}"`, 'accept-ranges': 'bytes' };
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      const end = m[2] === '' ? bytes.length - 1 : Math.min(Number(m[2]), bytes.length - 1);
      if (start >= bytes.length) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
        return;
      }
      body = bytes.subarray(start, end + 1);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${bytes.length}`;
    } else if (fault.extraBytes) {
      body = Buffer.concat([bytes, Buffer.alloc(fault.extraBytes, 7)]);
    }
    // A cut or stalled response still announced its whole length, as a real server's does.
    if (!fault.chunked) headers['content-length'] = body.length;
    res.writeHead(status, headers);
    if (fault.cutAfter !== undefined) {
      const part = body.subarray(0, fault.cutAfter);
      this.bytesSent += part.length;
      res.write(part, () => setTimeout(() => res.destroy(), 20));
      return;
    }
    if (fault.stallAfter !== undefined) {
      const part = body.subarray(0, fault.stallAfter);
      this.bytesSent += part.length;
      res.write(part);
      this.#stalled.add(res);
      return;
    }
    this.bytesSent += body.length;
    res.end(body);
  }
}
