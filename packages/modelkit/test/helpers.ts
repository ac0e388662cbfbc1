import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inject, onTestFinished } from 'vitest';
import type * as ort from 'onnxruntime-node';
import { modelPath, openSession, readModelCard } from '../src/index.ts';
import type { ModelCard } from '../src/index.ts';

export function modelsDir(): string {
  return inject('modelsDir');
}

export async function card(name: string): Promise<ModelCard> {
  const c = await readModelCard(modelsDir(), name);
  if (!c) throw new Error(`no card for ${name}`);
  return c;
}

/** Opens a session on a built model and releases it when the test ends. */
export async function session(name: string): Promise<ort.InferenceSession> {
  const s = await openSession(modelPath(modelsDir(), name));
  onTestFinished(() => s.release());
  return s;
}

export async function readJson<T>(name: string, file: string): Promise<T> {
  return JSON.parse(await readFile(join(modelsDir(), name, file), 'utf8')) as T;
}
