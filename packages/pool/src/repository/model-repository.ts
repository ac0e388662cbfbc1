import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import { parseModelConfig, type ModelConfig } from './model-config.ts';

export const MODEL_FILE = 'model.onnx';
export const CONFIG_FILE = 'config.json';

/** Model and version folder names: no separators, no dot-dot, nothing a shell or URL would mangle. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isRepositoryName(name: string): boolean {
  return NAME.test(name) && !name.includes('..');
}

export function checkName(name: string, what: 'model' | 'version'): void {
  if (!isRepositoryName(name)) {
    throw new FlotillaError('FLT_KSERVE_NAME_INVALID', `${what} name ${JSON.stringify(name.slice(0, 64))} cannot name a repository folder`);
  }
}

/** Numeric-aware: 2 < 10, 1.0.9 < 1.0.10. */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export interface RepositoryVersion {
  version: string;
  path: string;
}

export interface RepositoryModel {
  name: string;
  /** Ascending; only folders holding a model.onnx. */
  versions: RepositoryVersion[];
  config: ModelConfig;
}

/**
 * A model repository folder in Triton's layout: `<root>/<model>/<version>/model.onnx`, with an
 * optional `<root>/<model>/config.json` (batching overrides, version policy). Read on demand:
 * loading a model reads its folder again, so files dropped in later are picked up by a load call.
 */
export class ModelRepository {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** Model folder names, sorted; other entries are ignored. */
  async list(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && isRepositoryName(e.name))
      .map((e) => e.name)
      .sort();
  }

  /** Reads one model folder; throws FLT_POOL_MODEL_NOT_IN_REPOSITORY or FLT_POOL_MODEL_CONFIG_INVALID. */
  async read(name: string): Promise<RepositoryModel> {
    checkName(name, 'model');
    const dir = join(this.root, name);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      throw new FlotillaError('FLT_POOL_MODEL_NOT_IN_REPOSITORY', `the model repository has no folder ${name}`, { model: name });
    }
    const versions: RepositoryVersion[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || !isRepositoryName(e.name)) continue;
      const path = join(dir, e.name, MODEL_FILE);
      const file = await stat(path).catch(() => undefined);
      if (file?.isFile()) versions.push({ version: e.name, path });
    }
    if (versions.length === 0) {
      throw new FlotillaError('FLT_POOL_MODEL_NOT_IN_REPOSITORY', `${name} has no <version>/${MODEL_FILE}`, { model: name });
    }
    versions.sort((a, b) => compareVersions(a.version, b.version));
    let config: ModelConfig = {};
    const text = await readFile(join(dir, CONFIG_FILE), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new FlotillaError('FLT_POOL_MODEL_CONFIG_INVALID', `${name}/${CONFIG_FILE} cannot be read: ${err.message}`, { model: name });
    });
    if (text !== undefined) config = parseModelConfig(name, text);
    return { name, versions, config };
  }
}
