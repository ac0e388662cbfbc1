import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildModels } from '../src/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    modelsDir: string;
  }
}

/**
 * One shared build for all test files. It lives in a fixed folder under the OS temp dir and is
 * reused while the model kit's sources are unchanged (buildModels checks the generator hash), so
 * repeated runs skip the MNIST training.
 */
export default async function setup(project: TestProject): Promise<void> {
  const dir = join(tmpdir(), 'flotilla-modelkit-test-models');
  await buildModels(dir);
  project.provide('modelsDir', dir);
}
