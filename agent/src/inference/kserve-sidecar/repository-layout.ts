import { copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import type { LoadSpec } from '../types.ts';

/**
 * Where a model version lives in the KServe server's model repository:
 *
 *   <repository>/<model>--<version>/config.pbtxt
 *   <repository>/<model>--<version>/1/model.plan   (or model.onnx)
 *
 * Triton wants integer version folders, while Flotilla versions are strings like 1.2.0, so each
 * Flotilla version becomes its own repository model with the single version 1. That also lets the
 * A/B slots hold the old and the new version at once and unload one without touching the other.
 */

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The one version folder each repository model holds. */
export const REPOSITORY_VERSION = '1';

export function repositoryName(model: string, version: string): string {
  if (!MODEL_NAME.test(model) || model.includes('--') || model.includes('..')) {
    throw new FlotillaError('FLT_KSERVE_NAME_INVALID', `model name ${JSON.stringify(model.slice(0, 80))} cannot be a repository folder`);
  }
  if (!VERSION_NAME.test(version) || version.includes('..')) {
    throw new FlotillaError('FLT_KSERVE_NAME_INVALID', `version ${JSON.stringify(version.slice(0, 80))} cannot be a repository folder`);
  }
  return `${model}--${version}`;
}

export function artifactFileName(format: LoadSpec['format']): string {
  return format === 'tensorrt-plan' ? 'model.plan' : 'model.onnx';
}

/**
 * The smallest config Triton accepts for these backends: the platform, one pinned version, and
 * max_batch_size 0 so the model's shapes (batch dimension included) are served as they are. Triton
 * fills in inputs and outputs from the plan or ONNX file itself.
 */
export function configPbtxt(name: string, format: LoadSpec['format']): string {
  const platform = format === 'tensorrt-plan' ? 'tensorrt_plan' : 'onnxruntime_onnx';
  return [
    `name: "${name}"`,
    `platform: "${platform}"`,
    'max_batch_size: 0',
    `version_policy: { specific: { versions: [ ${REPOSITORY_VERSION} ] } }`,
    '',
  ].join('\n');
}

/** Copies the verified artifact in and writes the config, each through a temporary file and a rename. */
export async function placeModel(repositoryDir: string, name: string, spec: Pick<LoadSpec, 'path' | 'format'>): Promise<string> {
  try {
    const s = await stat(spec.path);
    if (!s.isFile()) throw new Error('not a file');
  } catch (err) {
    throw new FlotillaError('FLT_KSERVE_ARTIFACT_MISSING', `${spec.path}: ${(err as Error).message}`, { path: spec.path });
  }
  const modelDir = join(repositoryDir, name);
  const versionDir = join(modelDir, REPOSITORY_VERSION);
  await mkdir(versionDir, { recursive: true });
  const artifact = join(versionDir, artifactFileName(spec.format));
  await copyFile(spec.path, `${artifact}.tmp`);
  await rename(`${artifact}.tmp`, artifact);
  const config = join(modelDir, 'config.pbtxt');
  await writeFile(`${config}.tmp`, configPbtxt(name, spec.format));
  await rename(`${config}.tmp`, config);
  return modelDir;
}

export async function removeModel(repositoryDir: string, name: string): Promise<void> {
  await rm(join(repositoryDir, name), { recursive: true, force: true });
}
