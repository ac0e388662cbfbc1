import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HARD_EXAMPLE_DIGEST_HEADER, hardExampleInputPath } from '@flotilla/protocol';
import { loadConfig } from '../../src/config/load.ts';
import { DEFAULT_MAX_INPUT_UPLOAD_BYTES } from '../../src/hard-examples/index.ts';
import { enrollAccepted, startServer, type TestServer } from '../helpers/server.ts';

const LIMIT = 64 * 1024;

describe('the configured size limit of hard-example input uploads', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('refuses an upload one byte over hardExamples.maxInputUploadBytes with 413 and stores one at the limit', async () => {
    t = await startServer({ hardExamples: { maxInputUploadBytes: LIMIT } });
    const credential = await enrollAccepted(t, 'edge-limit');
    const server = t;
    const put = async (requestId: string, body: Buffer) => {
      // Over a real socket, so the limit is checked on what arrives, not on an in-process payload.
      const res = await fetch(new URL(hardExampleInputPath(requestId), server.http), {
        method: 'PUT',
        headers: {
          authorization: `Basic ${Buffer.from(`edge-limit:${credential}`).toString('base64')}`,
          'content-type': 'application/octet-stream',
          [HARD_EXAMPLE_DIGEST_HEADER]: createHash('sha256').update(body).digest('hex'),
        },
        body,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    const over = await put('req-over', Buffer.alloc(LIMIT + 1, 1));
    expect(over.status).toBe(413);
    expect(over.body).toMatchObject({ code: 'FLT_HARD_EXAMPLE_UPLOAD_TOO_LARGE', details: { maxBytes: LIMIT } });
    const at = await put('req-at', Buffer.alloc(LIMIT, 2));
    expect(at).toMatchObject({ status: 201, body: { bytes: LIMIT, stored: true } });
    expect(t.server.db.prepare('SELECT request_id FROM hard_example_inputs').all()).toEqual([{ request_id: 'req-at' }]);
  });

  it('takes the limit from FLOTILLA_HARD_EXAMPLE_MAX_INPUT_UPLOAD_BYTES, defaults it, and refuses a value out of range', () => {
    expect(loadConfig({ env: { FLOTILLA_HARD_EXAMPLE_MAX_INPUT_UPLOAD_BYTES: String(LIMIT) } }).hardExamples.maxInputUploadBytes).toBe(LIMIT);
    expect(loadConfig({ env: {} }).hardExamples.maxInputUploadBytes).toBe(DEFAULT_MAX_INPUT_UPLOAD_BYTES);
    expect(() => loadConfig({ env: { FLOTILLA_HARD_EXAMPLE_MAX_INPUT_UPLOAD_BYTES: '12' } })).toThrow(/maxInputUploadBytes/);
  });
});
