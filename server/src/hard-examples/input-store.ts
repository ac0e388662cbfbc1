import type { Db } from '../db/open.ts';

/** One stored input upload. */
export interface StoredInput {
  bytes: number;
  sha256: string;
  data: Buffer;
}

export type PutInputResult = { kind: 'stored' } | { kind: 'duplicate' } | { kind: 'conflict'; sha256: string };

/** The default most bytes one input upload may hold (a 1024×1024×3 float image is 12 MiB). */
export const DEFAULT_MAX_INPUT_UPLOAD_BYTES = 16 * 1024 * 1024;

/**
 * Inputs of hard examples too large for an MQTT event, uploaded by their device over HTTPS and
 * keyed by (device, request id): a device can only ever write and be joined to its own examples.
 * The first upload for a key wins; the same bytes again are a no-op, other bytes a conflict.
 */
export class HardExampleInputStore {
  /** Most bytes one upload may hold. */
  readonly maxBytes: number;
  readonly #get;
  readonly #insert;

  constructor(db: Db, opts: { maxBytes?: number } = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_INPUT_UPLOAD_BYTES;
    // Its own table, created on first use, so the feature needs no shared schema migration.
    db.exec(
      `CREATE TABLE IF NOT EXISTS hard_example_inputs (
         device_id TEXT NOT NULL,
         request_id TEXT NOT NULL,
         bytes INTEGER NOT NULL,
         sha256 TEXT NOT NULL,
         data BLOB NOT NULL,
         received_at INTEGER NOT NULL,
         PRIMARY KEY (device_id, request_id)
       ) WITHOUT ROWID`,
    );
    // The retention sweep removes inputs by receipt time (server/src/retention).
    db.exec('CREATE INDEX IF NOT EXISTS hard_example_inputs_by_received ON hard_example_inputs(received_at)');
    this.#get = db.prepare('SELECT bytes, sha256, data FROM hard_example_inputs WHERE device_id = ? AND request_id = ?');
    this.#insert = db.prepare('INSERT OR IGNORE INTO hard_example_inputs (device_id, request_id, bytes, sha256, data, received_at) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /** Stores an upload once; committed when this returns. */
  put(deviceId: string, requestId: string, sha256: string, data: Buffer, receivedAt: number): PutInputResult {
    const inserted = this.#insert.run(deviceId, requestId, data.byteLength, sha256, data, receivedAt).changes === 1;
    if (inserted) return { kind: 'stored' };
    const existing = this.#get.get(deviceId, requestId) as StoredInput | undefined;
    return existing && existing.sha256 === sha256 && existing.bytes === data.byteLength ? { kind: 'duplicate' } : { kind: 'conflict', sha256: existing?.sha256 ?? '' };
  }

  get(deviceId: string, requestId: string): StoredInput | undefined {
    return this.#get.get(deviceId, requestId) as StoredInput | undefined;
  }
}
