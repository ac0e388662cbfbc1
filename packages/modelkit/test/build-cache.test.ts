import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildModels, modelPath, readModelCard, MODEL_NAMES } from '../src/index.ts';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-modelkit-cache-'));
  dirs.push(dir);
  return dir;
}

describe('buildModels', () => {
  it('writes model.onnx and model.json per model and returns the cards it wrote', async () => {
    const dir = await tempDir();
    const cards = await buildModels(dir, { only: ['tiny-mlp-fp32', 'heavy-conv-fp32'] });
    expect(cards.map((c) => c.name)).toEqual(['tiny-mlp-fp32', 'heavy-conv-fp32']);
    for (const c of cards) expect(await readModelCard(dir, c.name)).toEqual(c);
    expect((await readFile(modelPath(dir, 'tiny-mlp-fp32'))).length).toBe(cards[0]?.bytes);
  });

  it('leaves an up-to-date build alone on a second call', async () => {
    const dir = await tempDir();
    const [first] = await buildModels(dir, { only: ['tiny-mlp-fp32'] });
    const before = await stat(modelPath(dir, 'tiny-mlp-fp32'));
    const [second] = await buildModels(dir, { only: ['tiny-mlp-fp32'] });
    expect(second).toEqual(first);
    expect((await stat(modelPath(dir, 'tiny-mlp-fp32'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('rebuilds a model whose file no longer matches its card', async () => {
    const dir = await tempDir();
    const [first] = await buildModels(dir, { only: ['tiny-mlp-fp32'] });
    await writeFile(modelPath(dir, 'tiny-mlp-fp32'), 'not a model');
    const [second] = await buildModels(dir, { only: ['tiny-mlp-fp32'] });
    expect(second?.sha256).toBe(first?.sha256);
    expect((await readFile(modelPath(dir, 'tiny-mlp-fp32'))).length).toBe(first?.bytes);
  });

  it('produces byte-identical files from the same inputs', async () => {
    const [a, b] = await Promise.all([tempDir(), tempDir()]);
    const [ca] = await buildModels(a, { only: ['tiny-mlp-int8-static'] });
    const [cb] = await buildModels(b, { only: ['tiny-mlp-int8-static'] });
    expect(cb?.sha256).toBe(ca?.sha256);
  });

  it('builds each model once when two callers share a folder', async () => {
    const dir = await tempDir();
    const [x, y] = await Promise.all([buildModels(dir, { only: ['tiny-mlp-int8-dynamic'] }), buildModels(dir, { only: ['tiny-mlp-int8-dynamic'] })]);
    expect(x).toEqual(y);
  });

  it('rejects unknown model names and lists the known ones', async () => {
    await expect(buildModels(await tempDir(), { only: ['no-such-model'] })).rejects.toThrow(/no-such-model.*tiny-mlp-fp32/);
    expect(MODEL_NAMES).toContain('mnist-edge-int8');
  });
});
