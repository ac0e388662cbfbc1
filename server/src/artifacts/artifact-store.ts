import type { Readable } from 'node:stream';

/** What the store measured: the content address and the exact byte count. */
export interface StoredArtifact {
  sha256: string;
  length: number;
}

/** Inclusive byte range, as HTTP Range writes it. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutOptions {
  /** Refuse (FLT_ARTIFACT_TOO_LARGE) as soon as more bytes than this arrive. */
  maxBytes: number;
  /** Bytes the sender announced; fewer or more is FLT_ARTIFACT_INCOMPLETE. */
  expectedLength?: number;
}

/**
 * Content-addressed artifact storage. The registry only ever names blobs by sha256, so a store on
 * local disk and one on S3-compatible object storage are interchangeable behind this interface.
 * `put` measures the bytes itself; a put that fails for any reason leaves nothing behind.
 */
export interface ArtifactStore {
  put(source: Readable, opts: PutOptions): Promise<StoredArtifact>;
  /** Stream of the blob (or the inclusive range of it); null when there is no such blob. */
  open(sha256: string, range?: ByteRange): Promise<Readable | null>;
  stat(sha256: string): Promise<StoredArtifact | null>;
  /** True when a blob was removed. */
  delete(sha256: string): Promise<boolean>;
  /**
   * A short-lived URL the device may fetch the blob from directly (object storage in redirect
   * mode); absent or null means the server streams the bytes itself. Call only after the caller's
   * entitlement has been checked: the URL is the authorization.
   */
  downloadUrl?(sha256: string): Promise<string | null>;
  /** Releases connections; safe to call twice. */
  close?(): Promise<void>;
}
