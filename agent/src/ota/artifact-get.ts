import net from 'node:net';
import tls from 'node:tls';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { request } from 'undici';

/**
 * How the downloader fetches one artifact response. Two transports share this shape:
 *
 * - `direct`: one HTTP/1.1 GET on its own connection whose socket reads land in a single reused
 *   buffer (Node's `onread` user buffer), handed to the downloader to write and hash before the next
 *   read. No per-read allocation, no stream machinery, no fresh pages to fault in: on the 2-core
 *   device class this took a 100 MB download from 181 to 703 MB/s (docs/benchmarks.md). It speaks
 *   only what an artifact response needs (a `Content-Length` body); anything else is refused with
 *   `UnsupportedResponse` before a body byte is taken, and the downloader takes that response again
 *   through undici.
 * - `undici`: undici's `request`, body chunks pulled from its stream.
 */
export interface ArtifactResponse {
  readonly statusCode: number;
  /** Lower-case names; a repeated header's values joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Hands every body byte to `take`, in order. `take` must be done with the view when it returns
   * (the direct transport reads the next bytes into the same memory). After every `yieldEveryBytes`
   * the event loop runs before more is taken (a transport may overshoot by one read). Resolves at
   * the end of the body; rejects on a cut, a malformed response, an abort, or when `take` throws.
   */
  consume(take: (chunk: Uint8Array) => void, yieldEveryBytes: number): Promise<void>;
  /** Drops the body; never throws. */
  discard(): Promise<void>;
}

export type ArtifactGet = (url: URL, headers: Readonly<Record<string, string>>, signal: AbortSignal) => Promise<ArtifactResponse>;

/** A response the direct transport does not speak (no `Content-Length` body); nothing of it was taken. */
export class UnsupportedResponse extends Error {}

/** The direct transport's read buffer: the most one socket read hands the downloader. */
export const DIRECT_READ_BYTES = 1024 * 1024;
/** A response head larger than this is refused (Node's own HTTP parser allows 16 KiB). */
const HEAD_LIMIT = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
/** A header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/;
const BAD_VALUE_CHAR = /[\0\n\r]/;

export const undiciGet: ArtifactGet = async (url, headers, signal) => {
  const res = await request(url, { method: 'GET', headers: { ...headers }, signal, headersTimeout: 0, bodyTimeout: 0 });
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  return {
    statusCode: res.statusCode,
    headers: flat,
    async consume(take, yieldEveryBytes) {
      // Pulling with the async iterator keeps undici's 64 KiB body buffer as the back-pressure
      // point. libuv reads up to ~2 MiB per wake-up and those chunks arrive here as microtasks one
      // after another, hence the explicit turn.
      let sinceTurn = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        take(buf);
        sinceTurn += buf.byteLength;
        if (sinceTurn >= yieldEveryBytes) {
          sinceTurn = 0;
          await nextTurn();
        }
      }
    },
    discard: () => res.body.dump().catch(() => undefined),
  };
};

interface Head {
  statusCode: number;
  headers: Record<string, string>;
}

/** Whether a character code is optional whitespace (space or tab). */
const isOws = (c: number): boolean => c === 0x20 || c === 0x09;

/**
 * Parses a response head (without its blank line); throws on anything malformed. Header values are
 * trimmed by index, not by a regular expression: a value of many spaces before a last character
 * would make a backtracking pattern quadratic in the line (~180 ms for one 16 KiB line).
 */
export function parseResponseHead(text: string): Head {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (!status) throw new Error(`malformed status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  // No prototype: a header named `constructor` or `__proto__` is just a header.
  const headers = Object.create(null) as Record<string, string>;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // Folded lines (obsolete), bare LFs, NULs and missing colons are all refused.
    if (!TOKEN.test(name) || BAD_VALUE_CHAR.test(line)) throw new Error(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    let from = colon + 1;
    let to = line.length;
    while (from < to && isOws(line.charCodeAt(from))) from++;
    while (to > from && isOws(line.charCodeAt(to - 1))) to--;
    const value = line.slice(from, to);
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return { statusCode: Number(status[1]), headers };
}

/** The body length a head announces: a number, or null where the body is not `Content-Length` framed. */
function bodyLength(head: Head): number | null {
  if (head.statusCode === 204 || head.statusCode === 304) return 0;
  if (head.statusCode < 200 || 'transfer-encoding' in head.headers) return null;
  const declared = head.headers['content-length'];
  if (declared === undefined) return null;
  // Repeated Content-Length headers must agree (RFC 9110 §8.6).
  const values = new Set(declared.split(',').map((v) => v.trim()));
  const [only] = values;
  if (values.size !== 1 || !/^\d{1,15}$/.test(only!)) throw new Error(`malformed Content-Length ${JSON.stringify(declared.slice(0, 80))}`);
  return Number(only);
}

/**
 * The direct transport: a GET on a connection of its own (`Connection: close`), http or https
 * (Node's default trust, as for undici and MQTT). See ArtifactResponse.
 */
export const directGet: ArtifactGet = (url, headers, signal) => {
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(new TypeError(`the direct transport speaks http and https, not ${url.protocol}`));
  let request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || BAD_VALUE_CHAR.test(value) || name.toLowerCase() === 'host' || name.toLowerCase() === 'connection') {
      return Promise.reject(new TypeError(`request header ${JSON.stringify(name)} refused`));
    }
    request += `${name}: ${value}\r\n`;
  }
  request += 'connection: close\r\n\r\n';
  return new DirectResponse(url, secure, request, signal).head;
};

type Phase = 'head' | 'waiting' | 'body' | 'done';

class DirectResponse implements ArtifactResponse {
  statusCode = 0;
  headers: Record<string, string> = {};
  readonly head: Promise<ArtifactResponse>;
  #phase: Phase = 'head';
  readonly #socket: net.Socket;
  readonly #signal: AbortSignal;
  #headBytes: Buffer = Buffer.alloc(0);
  /** Body bytes read before consume() (with the head, or from a TLS socket after the pause), handed on first. */
  #early: Buffer | null = null;
  /** The announced body length; null where the body is not Content-Length framed. */
  #length: number | null = null;
  #left = 0;
  #take: ((chunk: Uint8Array) => void) | null = null;
  #yieldEvery = Infinity;
  #sinceTurn = 0;
  /** Settles the head promise, then (from consume() on) the body promise. */
  #settle: ((err: Error | null) => void) | null;
  /** A failure between the head and consume(), which consume() then reports. */
  #lateError: Error | null = null;

  constructor(url: URL, secure: boolean, request: string, signal: AbortSignal) {
    this.#signal = signal;
    let settleHead!: (err: Error | null) => void;
    this.head = new Promise<ArtifactResponse>((resolve, reject) => {
      settleHead = (err) => (err ? reject(err) : resolve(this));
    });
    this.#settle = settleHead;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port || (secure ? 443 : 80));
    const onread = { buffer: Buffer.allocUnsafe(DIRECT_READ_BYTES), callback: (n: number, buf: Buffer) => this.#onRead(buf.subarray(0, n)) };
    this.#socket = secure
      ? // Node passes `onread` through to the TLS socket; its type declarations do not list it.
        tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], onread } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    this.#socket.once(secure ? 'secureConnect' : 'connect', () => this.#socket.write(request));
    this.#socket.on('error', (err) => {
      if (!this.#bodyInHand()) this.#end(err);
    });
    this.#socket.on('close', () => {
      if (this.#bodyInHand()) return;
      this.#end(new Error(this.#phase === 'head' ? 'the artifact server closed the connection before its response head' : `the artifact server closed the connection after ${(this.#length ?? 0) - this.#left} of ${this.#length ?? '?'} body bytes`));
    });
    if (signal.aborted) this.#abort();
    else signal.addEventListener('abort', this.#abort, { once: true });
  }

  /** Whether the whole body is already in memory, waiting for consume(): the connection is not needed any more. */
  #bodyInHand(): boolean {
    return this.#phase === 'waiting' && this.#length !== null && this.#left <= (this.#early?.byteLength ?? 0);
  }

  readonly #abort = (): void => {
    const reason: unknown = this.#signal.reason;
    this.#end(reason instanceof Error ? reason : new Error('download aborted'));
  };

  /** Ends the exchange once: closes the connection and settles whichever promise is waiting. */
  #end(err: Error | null): void {
    if (this.#phase === 'done') return;
    if (this.#phase === 'waiting') this.#lateError = err;
    this.#phase = 'done';
    this.#signal.removeEventListener('abort', this.#abort);
    this.#socket.destroy();
    const settle = this.#settle;
    this.#settle = null;
    settle?.(err);
  }

  /** One socket read (the view is reused for the next one); answers whether reading goes on now. */
  #onRead(view: Buffer): boolean {
    if (this.#phase === 'body') return this.#feed(view);
    if (this.#phase === 'waiting') {
      // Reading was paused for the caller to look at the head, but a TLS socket may still hand on
      // what it had already decrypted: keep it for consume().
      this.#early = this.#early ? Buffer.concat([this.#early, view]) : Buffer.from(view);
      return false;
    }
    if (this.#phase !== 'head') return false;
    const head = Buffer.concat([this.#headBytes, view]);
    const end = head.indexOf(HEAD_END);
    if (end < 0 ? head.byteLength > HEAD_LIMIT : end > HEAD_LIMIT) {
      this.#end(new Error(`the artifact server's response head exceeds ${HEAD_LIMIT} bytes`));
      return false;
    }
    if (end < 0) {
      this.#headBytes = head;
      return true;
    }
    try {
      const parsed = parseResponseHead(head.toString('latin1', 0, end));
      this.#length = bodyLength(parsed);
      this.statusCode = parsed.statusCode;
      this.headers = parsed.headers;
    } catch (err) {
      this.#end(new Error(`the artifact server sent a malformed response: ${(err as Error).message}`));
      return false;
    }
    this.#headBytes = Buffer.alloc(0);
    // `head` is a copy, so these bytes outlive the read buffer.
    if (end + HEAD_END.byteLength < head.byteLength) this.#early = head.subarray(end + HEAD_END.byteLength);
    this.#left = this.#length ?? 0;
    const settle = this.#settle!;
    this.#settle = null;
    this.#phase = 'waiting';
    settle(null);
    // Nothing more is read until consume().
    return false;
  }

  /** Hands body bytes on; answers whether the socket may go on reading now. */
  #feed(view: Uint8Array): boolean {
    // Bytes past the announced length are not the body (the connection closes after it).
    const chunk = view.byteLength > this.#left ? view.subarray(0, this.#left) : view;
    if (chunk.byteLength > 0) {
      try {
        this.#take!(chunk);
      } catch (err) {
        this.#end(err instanceof Error ? err : new Error(String(err)));
        return false;
      }
      this.#left -= chunk.byteLength;
      this.#sinceTurn += chunk.byteLength;
    }
    if (this.#left === 0) {
      this.#end(null);
      return false;
    }
    if (this.#sinceTurn >= this.#yieldEvery) {
      this.#sinceTurn = 0;
      setImmediate(() => {
        if (this.#phase === 'body') this.#socket.resume();
      });
      return false;
    }
    return true;
  }

  consume(take: (chunk: Uint8Array) => void, yieldEveryBytes: number): Promise<void> {
    if (this.#phase === 'done') return Promise.reject(this.#lateError ?? new Error('the response was already ended'));
    if (this.#phase !== 'waiting') return Promise.reject(new Error('consume() called twice'));
    if (this.#length === null) {
      this.#end(null);
      return Promise.reject(new UnsupportedResponse(`HTTP ${this.statusCode} without a Content-Length body`));
    }
    return new Promise<void>((resolve, reject) => {
      this.#settle = (err) => (err ? reject(err) : resolve());
      this.#take = take;
      this.#yieldEvery = yieldEveryBytes;
      this.#phase = 'body';
      const early = this.#early ?? Buffer.alloc(0);
      this.#early = null;
      if (this.#feed(early)) this.#socket.resume();
    });
  }

  discard(): Promise<void> {
    this.#end(null);
    return Promise.resolve();
  }
}
