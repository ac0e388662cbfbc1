import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { corruptModelBytes, modelPath, openSession, runGoldenSelfTest, writeCorruptedModel } from '../src/index.ts';
import { card, modelsDir, session } from './helpers.ts';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-modelkit-bad-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('bad builds', () => {
  it('mnist-edge-int8-bad-golden loads and runs but fails the golden self-test it ships with', async () => {
    const [bad, good] = await Promise.all([card('mnist-edge-int8-bad-golden'), card('mnist-edge-int8')]);
    expect(bad.fault).toBe('golden-mismatch');
    expect(bad.golden).toEqual(good.golden);
    expect(bad.inputs).toEqual(good.inputs);
    const result = await runGoldenSelfTest(await session('mnist-edge-int8-bad-golden'), bad.golden);
    expect(result.pass).toBe(false);
    expect(Number.isFinite(result.maxAbsDiff)).toBe(true);
    expect(result.maxAbsDiff).toBeGreaterThan(bad.golden.tolerance);
  });

  it('mnist-edge-int8-unloadable is a well-formed file that onnxruntime refuses to load', async () => {
    const bad = await card('mnist-edge-int8-unloadable');
    expect(bad.fault).toBe('unloadable');
    expect(bad.bytes).toBeGreaterThan(10_000);
    await expect(openSession(modelPath(modelsDir(), 'mnist-edge-int8-unloadable'))).rejects.toThrow(/logit_offset/);
  });

  it('a truncated copy of a good model fails to load', async () => {
    const dest = join(await tempDir(), 'truncated.onnx');
    await writeCorruptedModel(modelPath(modelsDir(), 'mnist-edge-int8'), dest, 'truncate', 0.5);
    expect((await readFile(dest)).length).toBe(Math.floor((await card('mnist-edge-int8')).bytes * 0.5));
    await expect(openSession(dest)).rejects.toThrow();
  });

  it('a garbled copy keeps its length but no longer matches the sha256 and fails to load or fails the self-test', async () => {
    const good = await card('mnist-edge-int8');
    const bytes = corruptModelBytes(await readFile(modelPath(modelsDir(), 'mnist-edge-int8')), 'garble');
    expect(bytes.length).toBe(good.bytes);
    const s = await openSession(bytes).catch(() => undefined);
    if (s) {
      onTestFinished(() => s.release());
      expect((await runGoldenSelfTest(s, good.golden)).pass).toBe(false);
    }
  });
});
