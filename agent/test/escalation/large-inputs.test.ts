import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Compile } from 'typebox/compile';
import { HardExampleData } from '@flotilla/protocol';
import { InputSpool } from '../../src/escalation/input-spool.ts';
import { MAX_EXAMPLE_INPUT_BYTES } from '../../src/escalation/hard-example.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { input, makeEscalator, openTestOutbox, settle } from './fixtures.ts';
import { refusedUrl } from './kserve-test-pool.ts';

const check = Compile(HardExampleData);
const LARGE = MAX_EXAMPLE_INPUT_BYTES / 4 + 1024; // floats: just over what an event carries

describe('the input spool', () => {
  it('finds its inputs again after a restart, oldest first, and throws away half-written files', () => {
    const dir = tempDir('flotilla-spool-');
    const spool = InputSpool.open(dir);
    expect(spool.put('b/../odd id', Buffer.from('first'))).toBe(true);
    expect(spool.put('a', Buffer.from('second'))).toBe(true);
    writeFileSync(join(dir, 'half.input.tmp'), 'torn');
    const again = InputSpool.open(dir);
    expect(again.pending()).toEqual(['b/../odd id', 'a']);
    expect(again.read('b/../odd id')?.toString()).toBe('first');
    expect(again.depth()).toEqual({ inputs: 2, bytes: 11 });
    expect(readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(false);
    again.remove('a');
    again.remove('a');
    expect(InputSpool.open(dir).pending()).toEqual(['b/../odd id']);
  });

  it('refuses an input that would overflow it and keeps the first bytes stored under an id', () => {
    const spool = InputSpool.open(tempDir('flotilla-spool-'), { maxBytes: 10 });
    expect(spool.put('x', Buffer.alloc(8))).toBe(true);
    expect(spool.put('x', Buffer.alloc(9, 1))).toBe(true);
    expect(spool.read('x')).toEqual(Buffer.alloc(8));
    expect(spool.put('y', Buffer.alloc(3))).toBe(false);
    expect(spool.depth()).toEqual({ inputs: 1, bytes: 8 });
  });
});

describe('hard examples with inputs too large for an event', () => {
  async function keepOne(largeInputs?: { spool: InputSpool }): Promise<Record<string, unknown>> {
    const outbox = openTestOutbox();
    const { escalator } = makeEscalator({ mode: 'always-cloud', budgetMs: 100 }, [{ pool: 'gone', region: 'lab', endpoints: [await refusedUrl()] }], {
      escalator: { enqueueEvent: (kind, data, o) => outbox.enqueue(kind, data, o), ...(largeInputs && { largeInputs }) },
    });
    await escalator.infer('digits', input(0.9, LARGE));
    await settle();
    escalator.close();
    const [entry] = outbox.all();
    expect(check.Check(entry?.data)).toBe(true);
    return entry!.data;
  }

  it('spools the input before its event and describes the tensors in the event, without their data', async () => {
    const spool = InputSpool.open(tempDir('flotilla-spool-'));
    const data = await keepOne({ spool });
    expect(spool.pending()).toEqual([data.requestId]);
    expect(data).toMatchObject({ input: [{ name: 'input', datatype: 'FP32', shape: [1, LARGE] }], inputOmittedBytes: LARGE * 4, inputUpload: { bytes: LARGE * 4 } });
    expect((data.input as Array<Record<string, unknown>>)[0]).not.toHaveProperty('b64');
  });

  it('leaves the input out, as before, without a spool or when the spool is full', async () => {
    expect(await keepOne()).toMatchObject({ input: [], inputOmittedBytes: LARGE * 4 });
    const full = await keepOne({ spool: InputSpool.open(tempDir('flotilla-spool-'), { maxBytes: 1024 }) });
    expect(full).toMatchObject({ input: [], inputOmittedBytes: LARGE * 4 });
    expect(full).not.toHaveProperty('inputUpload');
  });
});
