import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModels, modelPath, type ModelCard } from '@flotilla/modelkit';

/**
 * Model kit builds shared by the local API and sidecar tests. buildModels is idempotent and locks
 * its folder, so a fixed cache folder is safe across test files and runs.
 */
export const MODELS_DIR = join(tmpdir(), 'flotilla-agent-test-models');

export async function tinyMlp(): Promise<{ card: ModelCard; path: string }> {
  const [card] = await buildModels(MODELS_DIR, { only: ['tiny-mlp-fp32'] });
  if (!card) throw new Error('tiny-mlp-fp32 was not built');
  return { card, path: modelPath(MODELS_DIR, card.name) };
}

/** Golden input rows of a card as FP32 tensor fields. */
export function goldenInput(card: ModelCard): { name: string; shape: number[]; data: number[] } {
  const [name, t] = Object.entries(card.golden.inputs)[0] as [string, { shape: number[]; data: number[] }];
  return { name, shape: t.shape, data: t.data };
}

export function goldenOutput(card: ModelCard): { name: string; shape: number[]; data: number[] } {
  const [name, t] = Object.entries(card.golden.outputs)[0] as [string, { shape: number[]; data: number[] }];
  return { name, shape: t.shape, data: t.data };
}
