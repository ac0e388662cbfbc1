import { FlotillaError } from '@flotilla/protocol';
import { dataMatchesDatatype } from './datatypes.ts';
import type { Tensor, TensorSpec } from './types.ts';

function bad(message: string, details: Record<string, unknown>): FlotillaError {
  return new FlotillaError('FLT_INFER_BAD_INPUT', message, details);
}

/** Number of elements a shape holds, or -1 when a dimension is not a non-negative integer. */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) return -1;
    count *= dim;
  }
  return count;
}

/**
 * Checks request tensors against a model's declared inputs: every declared input exactly once and
 * nothing else, the declared datatype, the declared rank, every fixed dimension (-1 accepts any),
 * and data whose element count is the product of the shape. Runs on the caller's thread so a bad
 * request never reaches a worker. Throws FLT_INFER_BAD_INPUT.
 */
export function validateInputs(declared: readonly TensorSpec[], inputs: readonly Tensor[]): void {
  if (!Array.isArray(inputs)) throw bad('inputs must be an array of tensors', {});
  if (inputs.length !== declared.length) {
    throw bad(`the model takes ${declared.length} input(s), got ${inputs.length}`, { expected: declared.map((s) => s.name) });
  }
  for (const spec of declared) {
    let tensor: Tensor | undefined;
    for (const t of inputs) {
      if (t?.name !== spec.name) continue;
      if (tensor) throw bad(`input ${spec.name} given twice`, { input: spec.name });
      tensor = t;
    }
    if (!tensor) throw bad(`missing input ${spec.name}`, { input: spec.name, expected: declared.map((s) => s.name) });
    checkTensor(spec, tensor);
  }
}

function checkTensor(spec: TensorSpec, tensor: Tensor): void {
  const input = spec.name;
  if (tensor.datatype !== spec.datatype) {
    throw bad(`input ${input} must be ${spec.datatype}, got ${String(tensor.datatype)}`, { input, expected: spec.datatype, got: tensor.datatype });
  }
  const shape = tensor.shape;
  if (!Array.isArray(shape) || shape.length !== spec.shape.length) {
    throw bad(`input ${input} must have rank ${spec.shape.length}`, { input, expected: spec.shape, got: shape });
  }
  const count = elementCount(shape);
  if (count < 0) throw bad(`input ${input} has a dimension that is not a non-negative integer`, { input, got: shape });
  for (let i = 0; i < shape.length; i++) {
    const want = spec.shape[i] as number;
    if (want >= 0 && shape[i] !== want) throw bad(`input ${input} dimension ${i} must be ${want}, got ${shape[i]}`, { input, expected: spec.shape, got: shape });
  }
  if (tensor.data === null || typeof tensor.data !== 'object' || !dataMatchesDatatype(spec.datatype, tensor.data)) {
    throw bad(`input ${input} data does not hold ${spec.datatype} values`, { input });
  }
  if (tensor.data.length !== count) {
    throw bad(`input ${input} has ${tensor.data.length} elements, its shape [${shape.join(',')}] needs ${count}`, { input, got: tensor.data.length, expected: count });
  }
}
