import { FlotillaError, VersionMetadata } from '@flotilla/protocol';
import { Compile } from 'typebox/compile';
import { request } from 'undici';

const checkMetadata = Compile(VersionMetadata);

/** What one release fetch brings: the untrusted signed envelope and the version metadata. */
export interface FetchedRelease {
  /** Untrusted: verified by the caller with `verifyRelease` against the pinned keys. */
  release: unknown;
  metadata: VersionMetadata;
}

export interface ServerAccess {
  /** Base URL of the control server. */
  url: string;
  /** `Basic base64(deviceId:credential)`; undefined before enrollment. */
  authorization: string | undefined;
}

const MAX_JSON_BYTES = 8 * 1024 * 1024;

/**
 * The device side of the registry's REST API: trusted keys and their rotation log (public), and
 * per-release manifest + metadata (device credential, entitled releases only). Every answer is
 * size-capped and schema-checked; nothing here is trusted until the caller verified it.
 */
export class ReleaseClient {
  readonly #access: () => ServerAccess;
  readonly #timeoutMs: number;

  constructor(access: () => ServerAccess, opts: { timeoutMs?: number } = {}) {
    this.#access = access;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
  }

  artifactUrl(sha256: string): string {
    return `${this.#access().url.replace(/\/+$/, '')}/v1/artifacts/${sha256}`;
  }

  authHeaders(): Record<string, string> {
    const auth = this.#access().authorization;
    return auth ? { authorization: auth } : {};
  }

  async keys(): Promise<{ keys: unknown; rotations: number }> {
    const body = (await this.#getJson('/v1/keys', false)) as { keys?: unknown; rotations?: unknown };
    if (!Array.isArray(body.keys) || typeof body.rotations !== 'number') throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', 'malformed /v1/keys answer');
    return { keys: body.keys, rotations: body.rotations };
  }

  async rotations(after: number): Promise<Array<{ seq: number; rotation: unknown }>> {
    const body = (await this.#getJson(`/v1/keys/rotations?after=${after}`, false)) as { items?: unknown };
    if (!Array.isArray(body.items)) throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', 'malformed rotation list');
    return body.items.map((i: { seq?: unknown; rotation?: unknown }) => {
      if (typeof i.seq !== 'number') throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', 'malformed rotation list');
      return { seq: i.seq, rotation: i.rotation };
    });
  }

  /** FLT_OTA_UNKNOWN_MODEL when the release does not exist, is not published, or is not for this device. */
  async release(model: string, version: string): Promise<FetchedRelease> {
    const body = (await this.#getJson(`/v1/device/releases/${encodeURIComponent(model)}/${encodeURIComponent(version)}`, true)) as {
      release?: unknown;
      metadata?: unknown;
    };
    if (!checkMetadata.Check(body.metadata)) throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `malformed metadata for ${model}@${version}`);
    return { release: body.release, metadata: body.metadata };
  }

  async #getJson(path: string, authenticated: boolean): Promise<unknown> {
    const access = this.#access();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authenticated) {
      if (!access.authorization) throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', 'not enrolled yet: no device credential');
      headers.authorization = access.authorization;
    }
    let res;
    try {
      res = await request(`${access.url.replace(/\/+$/, '')}${path}`, { headers, headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs });
    } catch (err) {
      throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `server unreachable: ${(err as Error).message}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).byteLength;
      if (size > MAX_JSON_BYTES) {
        res.body.destroy();
        throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `answer to ${path} is larger than ${MAX_JSON_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 404 || (res.statusCode === 409 && text.includes('FLT_REGISTRY_NOT_PUBLISHED'))) {
      throw new FlotillaError('FLT_OTA_UNKNOWN_MODEL', `${path} answered HTTP ${res.statusCode}`, { status: res.statusCode });
    }
    if (res.statusCode !== 200) throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `${path} answered HTTP ${res.statusCode}`, { status: res.statusCode });
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new FlotillaError('FLT_OTA_DOWNLOAD_FAILED', `${path} answered malformed JSON`);
    }
  }
}
