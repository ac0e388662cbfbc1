import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { IR_VERSION, OPSET } from '../onnx/graph-builder.ts';
import type { ModelCard } from '../card.ts';
import { PRODUCER_VERSION } from '../producer.ts';
import type { BuildContext, BuiltModel, Recipe } from './recipe.ts';
import { MODEL_NAMES, RECIPES } from './recipes.ts';
import { sourceHash } from './source-hash.ts';
import { readIfExists, sha256Hex, writeFileAtomic } from './files.ts';
import { withDirLock } from './lock.ts';

export const MODEL_FILE = 'model.onnx';
export const CARD_FILE = 'model.json';

export interface BuildOptions {
  /** Build only these models (names from `MODEL_NAMES`); default all. */
  only?: readonly string[];
  /** Rebuild even when a matching build exists. */
  force?: boolean;
  log?: (message: string) => void;
}

export function modelDir(outDir: string, name: string): string {
  return join(outDir, name);
}

export function modelPath(outDir: string, name: string): string {
  return join(outDir, name, MODEL_FILE);
}

/** Reads a built model's card, or undefined when there is none. */
export async function readModelCard(outDir: string, name: string): Promise<ModelCard | undefined> {
  const raw = await readIfExists(join(outDir, name, CARD_FILE));
  return raw === undefined ? undefined : (JSON.parse(raw.toString('utf8')) as ModelCard);
}

async function generatorHash(recipe: Recipe): Promise<string> {
  return sha256Hex(
    JSON.stringify({ name: recipe.name, params: recipe.params, source: await sourceHash(), producer: PRODUCER_VERSION, onnxruntime: ort.env.versions.common }),
  );
}

/** A cached build is reused only when its hash matches and its files are intact. */
async function cachedCard(outDir: string, recipe: Recipe, hash: string): Promise<ModelCard | undefined> {
  const card = await readModelCard(outDir, recipe.name).catch(() => undefined);
  if (!card || card.generatorHash !== hash) return undefined;
  const onnx = await readIfExists(modelPath(outDir, recipe.name));
  if (!onnx || sha256Hex(onnx) !== card.sha256) return undefined;
  for (const file of Object.values(card.files)) if ((await readIfExists(join(outDir, recipe.name, file))) === undefined) return undefined;
  return card;
}

/** Indented for people, except number arrays (golden data), which stay on one line each. */
function cardJson(card: ModelCard): string {
  const pretty = JSON.stringify(card, null, 2);
  return `${pretty.replace(/\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]/g, (_, body: string) => `[${body.replace(/\s+/g, '')}]`)}\n`;
}

async function writeBuild(outDir: string, name: string, built: BuiltModel, hash: string): Promise<ModelCard> {
  const dir = modelDir(outDir, name);
  await mkdir(dir, { recursive: true });
  const files: Record<string, string> = {};
  for (const [role, { file, content }] of Object.entries(built.extraFiles ?? {})) {
    await writeFileAtomic(join(dir, file), JSON.stringify(content));
    files[role] = file;
  }
  await writeFileAtomic(join(dir, MODEL_FILE), built.onnx);
  const card: ModelCard = {
    name,
    ...built.card,
    format: 'onnx',
    irVersion: IR_VERSION,
    opset: OPSET,
    files,
    sha256: sha256Hex(built.onnx),
    bytes: built.onnx.byteLength,
    generatorHash: hash,
  };
  // The card goes last: its presence with a matching hash is what marks a build complete.
  await writeFileAtomic(join(dir, CARD_FILE), cardJson(card));
  return card;
}

/**
 * Builds the requested models into `<outDir>/<name>/` (model.onnx, model.json and any extra files)
 * and returns their cards in build order. Idempotent: a model whose folder already holds a build
 * with the same generator hash and intact files is not rebuilt, so callers may invoke this freely.
 */
export async function buildModels(outDir: string, options: BuildOptions = {}): Promise<ModelCard[]> {
  const unknown = (options.only ?? []).filter((n) => !MODEL_NAMES.includes(n));
  if (unknown.length > 0) throw new RangeError(`unknown model name(s): ${unknown.join(', ')}; known: ${MODEL_NAMES.join(', ')}`);
  const selected = options.only ? RECIPES.filter((r) => options.only?.includes(r.name)) : RECIPES;
  const log = options.log ?? (() => {});
  await mkdir(outDir, { recursive: true });

  return withDirLock(outDir, async () => {
    const memo = new Map<string, Promise<unknown>>();
    const ctx: BuildContext = {
      memo<T>(key: string, make: () => Promise<T> | T): Promise<T> {
        let entry = memo.get(key) as Promise<T> | undefined;
        if (!entry) {
          entry = Promise.resolve().then(make);
          memo.set(key, entry);
        }
        return entry;
      },
      log,
    };
    const cards: ModelCard[] = [];
    for (const recipe of selected) {
      const hash = await generatorHash(recipe);
      const cached = options.force ? undefined : await cachedCard(outDir, recipe, hash);
      if (cached) {
        log(`${recipe.name}: up to date`);
        cards.push(cached);
        continue;
      }
      const started = performance.now();
      const card = await writeBuild(outDir, recipe.name, await recipe.build(ctx), hash);
      log(`${recipe.name}: built in ${((performance.now() - started) / 1000).toFixed(1)} s (${card.bytes} bytes)`);
      cards.push(card);
    }
    return cards;
  });
}
