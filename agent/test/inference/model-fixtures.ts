import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModels, modelPath, type ModelCard } from '@flotilla/modelkit';
import type { ExecutionProvider } from '@flotilla/protocol';
import type { LoadSpec, Tensor } from '../../src/inference/types.ts';

export interface BuiltModels {
  dir: string;
  cards: Map<string, ModelCard>;
  card(name: string): ModelCard;
  path(name: string): string;
  spec(name: string, opts?: { model?: string; version?: string; providers?: ExecutionProvider[] }): LoadSpec;
  cleanup(): void;
}

/** Builds the named modelkit models into a fresh temp folder (once per test file). */
export async function buildFixtures(only: string[]): Promise<BuiltModels> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-inference-'));
  const cards = new Map((await buildModels(dir, { only })).map((c) => [c.name, c]));
  return {
    dir,
    cards,
    card(name) {
      const c = cards.get(name);
      if (!c) throw new Error(`model ${name} was not built`);
      return c;
    },
    path: (name) => modelPath(dir, name),
    spec(name, opts = {}) {
      const c = cards.get(name);
      return {
        model: opts.model ?? c?.model ?? name,
        version: opts.version ?? c?.version ?? '1.0.0',
        path: modelPath(dir, name),
        format: 'onnx',
        providers: opts.providers ?? ['cpu'],
      };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A float32 [rows, width] input named `input`, seeded so every run feeds the same numbers. */
export function floatInput(rows: number, width: number, seed = 1): Tensor {
  const data = new Float32Array(rows * width);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = (s / 2147483648) * 2 - 1;
  }
  return { name: 'input', datatype: 'FP32', shape: [rows, width], data };
}

export function goldenInput(card: ModelCard): Tensor[] {
  return Object.entries(card.golden.inputs).map(([name, t]) => ({ name, datatype: 'FP32', shape: [...t.shape], data: Float32Array.from(t.data) }));
}
