import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModels, modelDir, modelPath, type EvalSet, type ModelCard } from '@flotilla/modelkit';

/** The model kit builds the demo publishes and serves. */
export const BUILDS = {
  v1: 'mnist-edge-fp32',
  v2: 'mnist-edge-int8',
  v3: 'mnist-edge-int8-bad-golden',
  cloud: 'mnist-cloud-fp32',
} as const;

export interface DemoModels {
  cards: Record<keyof typeof BUILDS, ModelCard>;
  files: Record<keyof typeof BUILDS, string>;
  /** MNIST test digits with their labels: the demo's inference traffic. */
  digits: EvalSet;
}

/**
 * Builds (or finds in the cache) every model the demo needs. Builds are deterministic and cached
 * by generator hash, so a second run reuses the folder in seconds.
 */
export async function prepareModels(dir: string): Promise<DemoModels> {
  const cards = await buildModels(dir, { only: Object.values(BUILDS) });
  const byName = new Map(cards.map((c) => [c.name, c]));
  const pick = (name: string): ModelCard => {
    const card = byName.get(name);
    if (!card) throw new Error(`the model kit did not build ${name}`);
    return card;
  };
  const keys = Object.keys(BUILDS) as Array<keyof typeof BUILDS>;
  const picked = Object.fromEntries(keys.map((k) => [k, pick(BUILDS[k])])) as DemoModels['cards'];
  const files = Object.fromEntries(keys.map((k) => [k, modelPath(dir, BUILDS[k])])) as DemoModels['files'];
  const evalFile = picked.v2.files.evalSet;
  if (!evalFile) throw new Error(`${BUILDS.v2} has no evaluation set`);
  const digits = JSON.parse(readFileSync(join(modelDir(dir, BUILDS.v2), evalFile), 'utf8')) as EvalSet;
  return { cards: picked, files, digits };
}
