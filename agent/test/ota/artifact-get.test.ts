import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { directGet, parseResponseHead, UnsupportedResponse, DIRECT_READ_BYTES } from '../../src/ota/artifact-get.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface RawServer {
  url: string;
  /** What each connection sent, once it closed. */
  requests: Promise<string>[];
  connections: number;
}

/**
 * A TCP server that answers each connection with `respond` (raw bytes, as a misbehaving or
 * hand-written HTTP server would). Not an HTTP library: the point is to send what one would not.
 */
async function rawServer(respond: (socket: Socket, request: string) => void): Promise<RawServer> {
  const state: RawServer = { url: '', requests: [], connections: 0 };
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    state.connections++;
    sockets.add(socket);
    let text = '';
    let answered = false;
    state.requests.push(
      new Promise((resolve) => {
        socket.on('close', () => resolve(text));
      }),
    );
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (!answered && text.includes('\r\n\r\n')) {
        answered = true;
        respond(socket, text);
      }
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/artifacts/x?y=1`;
  return state;
}

const never = new AbortController().signal;

async function collect(res: { consume(take: (c: Uint8Array) => void, y: number): Promise<void> }, yieldEvery = Infinity): Promise<Buffer> {
  const parts: Buffer[] = [];
  // The view is reused after take returns: copy, as a consumer that keeps bytes must.
  await res.consume((c) => parts.push(Buffer.from(c)), yieldEvery);
  return Buffer.concat(parts);
}

describe('the direct artifact transport', () => {
  it('sends one GET with the caller’s headers and Connection: close, and reassembles a body split across reads', async () => {
    const body = randomBytes(3 * DIRECT_READ_BYTES + 123);
    const server = await rawServer((socket) => {
      // The head and the first body bytes in one write, the rest in odd pieces.
      socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Twice: a\r\nx-twice: b\r\n\r\n`), body.subarray(0, 10)]));
      let at = 10;
      const more = (): void => {
        if (at >= body.length) return void socket.end();
        const n = Math.min(body.length - at, 77_777);
        socket.write(body.subarray(at, at + n), more);
        at += n;
      };
      more();
    });
    const res = await directGet(new URL(server.url), { authorization: 'Basic abc', range: 'bytes=0-' }, never);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-twice']).toBe('a, b');
    expect((await collect(res)).equals(body)).toBe(true);
    const request = await server.requests[0]!;
    expect(request.startsWith('GET /v1/artifacts/x?y=1 HTTP/1.1\r\n')).toBe(true);
    expect(request).toContain('\r\nauthorization: Basic abc\r\n');
    expect(request).toContain('\r\nrange: bytes=0-\r\n');
    expect(request).toContain('\r\nconnection: close\r\n');
  });

  it('lets the event loop run between reads once yieldEveryBytes have been taken', async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const server = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])));
    const res = await directGet(new URL(server.url), {}, never);
    let taken = 0;
    let atTurn = 0;
    let most = 0;
    let ticking = true;
    const tick = (): void => {
      atTurn = taken;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await res.consume((c) => {
      taken += c.byteLength;
      most = Math.max(most, taken - atTurn);
    }, 64 * 1024);
    ticking = false;
    expect(taken).toBe(body.length);
    // One read past the bound at most.
    expect(most).toBeLessThanOrEqual(64 * 1024 + DIRECT_READ_BYTES);
  });

  it('refuses a header value or name that would inject into the request, before connecting', async () => {
    const server = await rawServer((socket) => socket.end('HTTP/1.1 204 No Content\r\n\r\n'));
    await expect(directGet(new URL(server.url), { authorization: 'Basic x\r\nX-Admin: 1' }, never)).rejects.toThrow(/request header "authorization" refused/);
    await expect(directGet(new URL(server.url), { 'bad name': 'x' }, never)).rejects.toThrow(/refused/);
    await expect(directGet(new URL(server.url), { host: 'elsewhere' }, never)).rejects.toThrow(/refused/);
    await expect(directGet(new URL('ftp://127.0.0.1/x'), {}, never)).rejects.toThrow(/http and https/);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.connections).toBe(0);
  });

  it.each([
    ['a status line that is not HTTP/1.x', 'HTTP/2 200\r\n\r\n', /malformed status line/],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n continued\r\n\r\nabc', /malformed header line/],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nContent-Length 3\r\n\r\nabc', /malformed header line/],
    ['Content-Length headers that disagree', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', /malformed Content-Length/],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /malformed Content-Length/],
    ['a response head over 16 KiB', `HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(17 * 1024)}\r\n\r\n`, /response head exceeds 16384 bytes/],
    ['a connection closed before the head ends', 'HTTP/1.1 200 OK\r\nContent-Len', /closed the connection before its response head/],
  ])('refuses %s with a clear error', async (_name, response, message) => {
    const server = await rawServer((socket) => socket.end(response));
    await expect(directGet(new URL(server.url), {}, never)).rejects.toThrow(message);
  });

  it('answers UnsupportedResponse for a chunked body and takes none of it', async () => {
    const server = await rawServer((socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    const res = await directGet(new URL(server.url), {}, never);
    let taken = 0;
    await expect(res.consume((c) => (taken += c.byteLength), Infinity)).rejects.toBeInstanceOf(UnsupportedResponse);
    expect(taken).toBe(0);
  });

  it('reports a body cut short with how much arrived, after handing on every byte that did', async () => {
    const body = randomBytes(100_000);
    const server = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: 200000\r\nContent-Range: bytes 0-199999/200000\r\n\r\n`), body])));
    const res = await directGet(new URL(server.url), {}, never);
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 0-199999/200000');
    const parts: Buffer[] = [];
    await expect(res.consume((c) => parts.push(Buffer.from(c)), Infinity)).rejects.toThrow('closed the connection after 100000 of 200000 body bytes');
    expect(Buffer.concat(parts).equals(body)).toBe(true);
  });

  it('hands on only the announced body when the server sends more, and closes the connection', async () => {
    const server = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES'));
    const res = await directGet(new URL(server.url), {}, never);
    expect((await collect(res)).toString()).toBe('hello');
    await server.requests[0];
  });

  it('stops reading and closes the connection when the consumer throws or the caller aborts', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const serve = (socket: Socket): void => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.write(body.subarray(0, 64 * 1024));
      // The rest never comes: only the client can end this exchange.
    };
    const server = await rawServer(serve);
    const refused = await directGet(new URL(server.url), {}, never);
    await expect(
      refused.consume(() => {
        throw new Error('over the signed length');
      }, Infinity),
    ).rejects.toThrow('over the signed length');
    await server.requests[0];

    const ac = new AbortController();
    const aborted = await directGet(new URL(server.url), {}, ac.signal);
    let taken = 0;
    const done = aborted.consume((c) => {
      taken += c.byteLength;
      if (taken >= 64 * 1024) ac.abort(new Error('stalled'));
    }, Infinity);
    await expect(done).rejects.toThrow('stalled');
    await server.requests[1];
    expect(server.connections).toBe(2);
  });

  it('closes the connection of a response it discards (a redirect, a refusal)', async () => {
    const server = await rawServer((socket) => socket.write('HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere/x\r\n\r\n'));
    const res = await directGet(new URL(server.url), {}, never);
    expect(res.statusCode).toBe(307);
    expect(res.headers.location).toBe('http://elsewhere/x');
    await res.discard();
    await server.requests[0];
  });

  it('parses a head into a status and lower-case headers', () => {
    expect(parseResponseHead('HTTP/1.0 404 Not Found\r\nETag: "x"\r\nEmpty:')).toEqual({ statusCode: 404, headers: { etag: '"x"', empty: '' } });
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nX: a\0b')).toThrow(/malformed header line/);
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length : 3')).toThrow(/malformed header line/);
    // Whitespace around a value goes, whatever its length; names that are Object's own stay headers.
    const head = parseResponseHead(`HTTP/1.1 200 OK\r\nX-Pad: \t a${' '.repeat(10_000)}b \t\r\nconstructor: c\r\n__proto__: p`);
    expect(head.headers['x-pad']).toBe(`a${' '.repeat(10_000)}b`);
    expect(head.headers.constructor).toBe('c');
    expect(Object.getOwnPropertyDescriptor(head.headers, '__proto__')?.value).toBe('p');
  });
});

describe('the direct artifact transport against arbitrary answers', () => {
  it('settles on whatever a server sends: a clear Error, or a body of exactly the announced length', async () => {
    let answer = Buffer.alloc(0);
    const server = await rawServer((socket) => socket.end(answer));
    const valid = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 16\r\nETag: "abc"\r\n\r\n0123456789abcdef');
    // Valid answers damaged by a few byte edits and cuts, plus plain noise.
    const damaged = fc
      .tuple(fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat({ max: valid.length }))
      .map(([edits, cut]) => {
        const b = Buffer.from(valid);
        for (const [at, byte] of edits) b[at] = byte;
        return b.subarray(0, Math.max(cut, valid.length - 8));
      });
    const noise = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));
    await fc.assert(
      fc.asyncProperty(fc.oneof(damaged, noise), async (bytes) => {
        answer = bytes;
        const outcome = await directGet(new URL(server.url), {}, never).then(
          async (res) => {
            const parts: Buffer[] = [];
            return res.consume((c) => parts.push(Buffer.from(c)), 4096).then(
              () => ({ ok: true as const, status: res.statusCode, length: res.headers['content-length'], body: Buffer.concat(parts) }),
              (err: unknown) => ({ ok: false as const, err }),
            );
          },
          (err: unknown) => ({ ok: false as const, err }),
        );
        if (outcome.ok) {
          expect(outcome.body.length).toBe(Number(outcome.length ?? 0));
        } else {
          expect(outcome.err).toBeInstanceOf(Error);
          expect((outcome.err as Error).message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 150, seed: 20261124 },
    );
  });
});

describe('the direct artifact transport over https', () => {
  it('downloads over TLS with the platform trust store, and refuses a certificate it does not trust', async () => {
    const blob = randomBytes(5 * 1024 * 1024 + 7);
    const sha256 = createHash('sha256').update(blob).digest('hex');
    const server = createTlsServer({ key: readFileSync(join(here, 'tls', 'key.pem')), cert: readFileSync(join(here, 'tls', 'cert.pem')) }, (socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`), blob])));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const url = `https://localhost:${(server.address() as AddressInfo).port}/a`;
    // Trust comes from the process's start (NODE_EXTRA_CA_CERTS), so the client runs in a child.
    const fetchIn = (env: NodeJS.ProcessEnv) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const code = `
          import { directGet } from ${JSON.stringify(join(here, '../../src/ota/artifact-get.ts'))};
          import { createHash } from 'node:crypto';
          const hash = createHash('sha256');
          try {
            const res = await directGet(new URL(${JSON.stringify(url)}), {}, new AbortController().signal);
            await res.consume((c) => hash.update(c), 1 << 20);
            console.log(res.statusCode, hash.digest('hex'));
          } catch (err) { console.log('error', err.code ?? err.message); }
        `;
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (c) => resolve({ code: c, out: out.trim() }));
      });
    const [trusted, untrusted] = await Promise.all([fetchIn({ NODE_EXTRA_CA_CERTS: join(here, 'tls', 'cert.pem') }), fetchIn({ NODE_EXTRA_CA_CERTS: '' })]);
    expect(trusted.out).toBe(`200 ${sha256}`);
    expect(untrusted.out).toMatch(/^error (SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
  });
});
