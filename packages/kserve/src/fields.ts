import { KServeError } from './errors.ts';
import type { DecodeLimits } from './limits.ts';
import type { Parameters } from './wire.ts';

/** Readers for untrusted JSON fields; each throws FLT_KSERVE_INVALID (or _TOO_LARGE) with the path. */

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function invalid(where: string, what: string): KServeError {
  return new KServeError('FLT_KSERVE_INVALID', `${where} ${what}`);
}

export function readObject(v: unknown, where: string): JsonObject {
  if (!isObject(v)) throw invalid(where, 'must be an object');
  return v;
}

export function readName(v: unknown, where: string, limits: DecodeLimits): string {
  if (typeof v !== 'string' || v.length === 0) throw invalid(where, 'must be a non-empty string');
  if (v.length > limits.maxNameLength) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where} is longer than ${limits.maxNameLength}`);
  return v;
}

export function readOptionalString(v: unknown, where: string, limits: DecodeLimits): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(where, 'must be a string');
  if (v.length > limits.maxNameLength) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where} is longer than ${limits.maxNameLength}`);
  return v;
}

export function readArray(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(where, 'must be an array');
  if (v.length > max) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where} has more than ${max} entries`);
  return v;
}

/** Parameters are copied key by key into a fresh object, so a `__proto__` key cannot reach a prototype. */
export function readParameters(v: unknown, where: string, limits: DecodeLimits): Parameters | undefined {
  if (v === undefined) return undefined;
  const obj = readObject(v, where);
  const keys = Object.keys(obj);
  if (keys.length > limits.maxParameters) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where} has more than ${limits.maxParameters} entries`);
  const out: Parameters = {};
  for (const key of keys) {
    if (key.length > limits.maxNameLength || key === '__proto__') throw invalid(`${where}`, `has a bad key`);
    const value = obj[key];
    if (typeof value === 'string') {
      if (value.length > limits.maxNameLength * 16) throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where}.${key} is too long`);
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw invalid(`${where}.${key}`, 'must be finite');
    } else if (typeof value !== 'boolean') {
      throw invalid(`${where}.${key}`, 'must be a string, number or boolean');
    }
    out[key] = value;
  }
  return out;
}

export function readOptionalBoolean(v: unknown, where: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(where, 'must be a boolean');
  return v;
}

/**
 * A tensor shape: at most maxDims non-negative integers (or -1 where `dynamic` allows it). Returns
 * the element count, refusing shapes whose product is over maxElements before anything is allocated.
 */
export function readShape(v: unknown, where: string, limits: DecodeLimits, dynamic = false): { shape: number[]; count: number } {
  const arr = readArray(v, where, limits.maxDims);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < arr.length; i++) {
    const d = arr[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < (dynamic ? -1 : 0)) {
      throw invalid(`${where}[${i}]`, dynamic ? 'must be an integer >= -1' : 'must be a non-negative integer');
    }
    shape.push(d);
    if (d >= 0) count *= d;
    if (count > limits.maxElements) {
      throw new KServeError('FLT_KSERVE_TOO_LARGE', `${where} has more than ${limits.maxElements} elements`);
    }
  }
  return { shape, count };
}
