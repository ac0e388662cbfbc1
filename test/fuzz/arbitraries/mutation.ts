import fc from 'fast-check';

/**
 * Structural mutations of a JSON document: pick one node (by index in a depth-first walk) and
 * delete it, replace it with a hostile value, add a hostile key next to it, or wrap it. Starting
 * from a valid message keeps most runs deep inside the validators instead of at the first check.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type MutationOp = 'delete' | 'replace' | 'add-key' | 'wrap-array' | 'wrap-object';

export interface Mutation {
  node: number;
  op: MutationOp;
  key: string;
  value: Json;
}

/** Values that break assumptions: wrong types, boundaries, huge or odd strings, prototype names. */
export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, -0.5, 1.5, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, 5e-324, '', ' ', '0', 'null', '__proto__', 'constructor', '../..', '\u0000', '\ud800', '\u202e', '%00', '$SYS', '#', '+', [], {}, [[]]) },
  { weight: 2, arbitrary: fc.integer().map((n) => n as Json) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => n as Json) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.nat({ max: 70_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
);

export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'v', 'type', 'id', 'ts', 'body', 'data', 'models', 'x'.repeat(100)),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

export const mutation: fc.Arbitrary<Mutation> = fc.record({
  node: fc.nat(),
  op: fc.constantFrom<MutationOp>('delete', 'replace', 'replace', 'replace', 'add-key', 'wrap-array', 'wrap-object'),
  key: hostileKey,
  value: hostileValue,
});

type Slot = { parent: Json[] | { [key: string]: Json } | null; key: string | number };

function slots(doc: Json): Slot[] {
  const out: Slot[] = [{ parent: null, key: '' }];
  const stack: Json[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    for (const [k, child] of Object.entries(v)) {
      out.push({ parent: v, key: Array.isArray(v) ? Number(k) : k });
      stack.push(child);
    }
  }
  return out;
}

function define(target: object, key: string | number, value: Json): void {
  // defineProperty, so a key named __proto__ becomes an own property as JSON.parse would make it.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Applies one mutation to a deep copy of `doc`. */
export function applyMutation(doc: Json, m: Mutation): Json {
  const root = structuredClone(doc);
  const all = slots(root);
  const slot = all[m.node % all.length]!;
  const current = slot.parent === null ? root : (slot.parent as Record<string, Json>)[slot.key as string]!;
  let next: Json | undefined;
  switch (m.op) {
    case 'delete':
      next = undefined;
      break;
    case 'replace':
      next = m.value;
      break;
    case 'wrap-array':
      next = [current];
      break;
    case 'wrap-object':
      next = { [m.key]: current };
      break;
    case 'add-key':
      if (current !== null && typeof current === 'object' && !Array.isArray(current)) define(current, m.key, m.value);
      else if (Array.isArray(current)) current.push(m.value);
      next = current;
      break;
  }
  if (slot.parent === null) return next === undefined ? null : next;
  if (next === undefined) {
    if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
    else delete (slot.parent as Record<string, Json>)[slot.key as string];
  } else {
    define(slot.parent, slot.key, next);
  }
  return root;
}

/** Byte-level damage to serialized text: truncation, a flipped bit, an inserted byte. */
export interface TextDamage {
  op: 'truncate' | 'flip' | 'insert';
  at: number;
  byte: number;
}

export const textDamage: fc.Arbitrary<TextDamage> = fc.record({
  op: fc.constantFrom<TextDamage['op']>('truncate', 'flip', 'insert'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
});

export function damageBytes(bytes: Buffer, d: TextDamage): Buffer {
  if (bytes.length === 0) return Buffer.from([d.byte]);
  const at = d.at % bytes.length;
  switch (d.op) {
    case 'truncate':
      return bytes.subarray(0, at);
    case 'flip': {
      const out = Buffer.from(bytes);
      out[at] = out[at]! ^ (1 << (d.byte % 8));
      return out;
    }
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([d.byte]), bytes.subarray(at)]);
  }
}
