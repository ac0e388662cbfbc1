import { Compile } from 'typebox/compile';
import { exampleTensorBytes, HardExampleData, type EscalationReason, type ExampleTensor, type HardExampleInputUpload, type HardExampleView } from '@flotilla/protocol';
import type { Db } from '../db/open.ts';
import { HardExampleInputStore, type StoredInput } from './input-store.ts';

const check = Compile(HardExampleData);

export interface HardExampleFilter {
  model?: string;
  /** Device time in ms, inclusive. */
  since?: number;
  /** Paging: examples with seq above this. */
  after?: number;
  limit: number;
}

interface Row {
  seq: number;
  device_id: string;
  event_id: string;
  received_at: number;
  data: string;
}

/**
 * Hard examples sent by devices (input, edge output, cloud output when known, versions, reason),
 * kept for retraining and export. Written by the device ingest inside its event transaction, so an
 * example is stored exactly when its event is acknowledged.
 */
export class HardExampleStore {
  /** Inputs too large for an event, uploaded on their own; joined to their example on export. */
  readonly inputs: HardExampleInputStore;
  /** The server's clock: what an input upload is stamped with (its age for the retention sweep). */
  readonly now: () => number;
  readonly #db: Db;
  readonly #insert;
  readonly #byRequest;
  readonly #update;

  constructor(db: Db, opts: { maxInputUploadBytes?: number; now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
    this.#db = db;
    this.inputs = new HardExampleInputStore(db, { ...(opts.maxInputUploadBytes !== undefined && { maxBytes: opts.maxInputUploadBytes }) });
    this.#insert = db.prepare(
      'INSERT OR IGNORE INTO hard_examples (device_id, event_id, model, version, answered_by, reason, at, received_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    // A late answer repeats its example's `at`, so the (at, seq) index finds the row without a scan.
    this.#byRequest = db.prepare("SELECT seq, data FROM hard_examples WHERE at = ? AND device_id = ? AND json_extract(data, '$.requestId') = ? ORDER BY seq LIMIT 1");
    this.#update = db.prepare('UPDATE hard_examples SET data = ? WHERE seq = ?');
  }

  /**
   * Stores one event's data; a resent event is a no-op. Returns the short record the device event
   * log keeps instead of the tensors, or an error record for data that does not fit the schema
   * (acknowledged all the same: resending it would never make it valid).
   */
  ingest(deviceId: string, eventId: string, data: unknown, receivedAt: number): Record<string, unknown> {
    if (!check.Check(data)) {
      const first = check.Errors(data)[0];
      return { code: 'FLT_ESCALATION_EXAMPLE_INVALID', reason: first ? `${first.instancePath || '/'} ${first.message}`.slice(0, 200) : 'invalid' };
    }
    const d = data;
    const uploadProblem = d.inputUpload ? checkUploadReference(d.input, d.inputUpload) : undefined;
    if (uploadProblem) return { code: 'FLT_ESCALATION_EXAMPLE_INVALID', reason: uploadProblem };
    const record = { model: d.model, version: d.version, answeredBy: d.answeredBy, reason: d.reason, requestId: d.requestId, storedIn: 'hard_examples' };
    // One row per escalated request: a late cloud answer is attached to the example sent before it.
    const existing = this.#byRequest.get(d.at, deviceId, d.requestId) as { seq: number; data: string } | undefined;
    if (existing) {
      const stored = JSON.parse(existing.data) as StoredData;
      if (!d.late || !d.cloudOutput || stored.cloudOutput) return { ...record, duplicateOf: existing.seq };
      const merged: StoredData = {
        ...stored,
        cloudOutput: d.cloudOutput,
        ...(d.cloudVersion !== undefined && { cloudVersion: d.cloudVersion }),
        ...(d.cloudAnsweredAt !== undefined && { cloudAnsweredAt: d.cloudAnsweredAt }),
      };
      this.#update.run(JSON.stringify(merged), existing.seq);
      return { ...record, lateAnswerFor: existing.seq };
    }
    // The late answer came first (its example was lost or is still on its way): it is whole, keep it.
    this.#insert.run(deviceId, eventId, d.model, d.version, d.answeredBy, JSON.stringify(d.reason), d.at, receivedAt, JSON.stringify(d));
    return record;
  }

  list(f: HardExampleFilter): HardExampleView[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.model !== undefined) {
      where.push('model = ?');
      args.push(f.model);
    }
    if (f.since !== undefined) {
      where.push('at >= ?');
      args.push(f.since);
    }
    if (f.after !== undefined) {
      where.push('seq > ?');
      args.push(f.after);
    }
    const sql = `SELECT seq, device_id, event_id, received_at, data FROM hard_examples ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, f.limit) as Row[]).map((r) => this.#view(r));
  }

  /** An example as exported, with its uploaded input joined in once it arrived and matches. */
  #view(r: Row): HardExampleView {
    const d = JSON.parse(r.data) as StoredData;
    const view = toView(r, d);
    if (!d.inputUpload) return view;
    const stored = this.inputs.get(r.device_id, d.requestId);
    const arrived = stored !== undefined && stored.bytes === d.inputUpload.bytes && stored.sha256 === d.inputUpload.sha256;
    return {
      ...view,
      ...(arrived && { input: withData(d.input, stored), inputOmittedBytes: null }),
      inputUpload: { bytes: d.inputUpload.bytes, sha256: d.inputUpload.sha256, arrived },
    };
  }

  /** Every matching example, one at a time (the JSON Lines export streams it). */
  *iterate(f: Omit<HardExampleFilter, 'limit'> & { limit?: number }): Generator<HardExampleView> {
    let after = f.after ?? 0;
    let left = f.limit ?? Infinity;
    for (;;) {
      const page = this.list({ ...f, after, limit: Math.min(500, left) });
      for (const v of page) yield v;
      left -= page.length;
      if (page.length < 500 || left <= 0) return;
      after = page[page.length - 1]!.seq;
    }
  }
}

interface StoredData {
  model: string;
  version: string;
  cloudModel?: string;
  cloudVersion?: string;
  answeredBy: HardExampleView['answeredBy'];
  reason: EscalationReason;
  requestId: string;
  error?: string;
  input: ExampleTensor[];
  inputOmittedBytes?: number;
  inputUpload?: HardExampleInputUpload;
  edgeOutput: ExampleTensor[];
  cloudOutput?: ExampleTensor[];
  cloudAnsweredAt?: number;
  at: number;
}

/**
 * An uploaded input is described in the event by its tensors' names, datatypes and shapes alone;
 * their sizes must add up to the upload, so the bytes can be cut back into tensors on export.
 */
function checkUploadReference(input: readonly ExampleTensor[], upload: HardExampleInputUpload): string | undefined {
  let total = 0;
  for (const t of input) {
    if (t.b64 !== undefined || t.strings !== undefined) return `/input ${t.name} carries data although the input was uploaded`;
    const bytes = exampleTensorBytes(t);
    if (bytes === undefined) return `/input ${t.name} has datatype ${t.datatype}, which cannot be uploaded as raw bytes`;
    total += bytes;
  }
  return total === upload.bytes ? undefined : `/inputUpload/bytes is ${upload.bytes}, the input tensors hold ${total}`;
}

/** The event's tensor descriptions with their slices of the uploaded bytes. */
function withData(input: readonly ExampleTensor[], stored: StoredInput): ExampleTensor[] {
  let at = 0;
  return input.map((t) => {
    const bytes = exampleTensorBytes(t) ?? 0;
    const b64 = stored.data.subarray(at, at + bytes).toString('base64');
    at += bytes;
    return { ...t, b64 };
  });
}

function toView(r: Row, d: StoredData): HardExampleView {
  return {
    seq: r.seq,
    deviceId: r.device_id,
    eventId: r.event_id,
    model: d.model,
    version: d.version,
    cloudModel: d.cloudModel ?? null,
    cloudVersion: d.cloudVersion ?? null,
    answeredBy: d.answeredBy,
    reason: d.reason,
    requestId: d.requestId,
    error: d.error ?? null,
    input: d.input,
    inputOmittedBytes: d.inputOmittedBytes ?? null,
    edgeOutput: d.edgeOutput,
    cloudOutput: d.cloudOutput ?? null,
    cloudAnsweredAt: d.cloudAnsweredAt ?? null,
    at: d.at,
    receivedAt: r.received_at,
  };
}
