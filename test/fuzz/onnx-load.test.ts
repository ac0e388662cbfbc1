import { describe, it } from 'vitest';
import { expectTargetClean } from './fuzz-ci.ts';
import { fuzzOnnxLoad } from './targets/onnx-load.ts';

describe('fuzz: damaged ONNX models through the agent load path', () => {
  it('refuses truncated, corrupted and random model files with FLT_INFER_ codes while the serving model keeps answering', async () => {
    await expectTargetClean(fuzzOnnxLoad, 8);
  });
});
