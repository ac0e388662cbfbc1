/**
 * Canonical JSON: the exact bytes a release signature covers. Object keys are sorted by UTF-16 code
 * unit, there is no whitespace, strings and numbers are written as JSON.stringify writes them.
 * Two parties that hold the same value therefore produce the same bytes, whatever order the keys
 * arrived in. Values JSON cannot carry faithfully are refused instead of being silently altered.
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set<object>(), '$');
}

export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

function write(value: unknown, ancestors: Set<object>, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // NaN and ±Infinity have no JSON form; JSON.stringify would quietly write null.
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: non-finite number at ${path}`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON: ${typeof value} at ${path} has no JSON form`);
  }
  const obj = value as object;
  if (ancestors.has(obj)) throw new TypeError(`canonical JSON: cycle at ${path}`);
  ancestors.add(obj);
  try {
    if (Array.isArray(obj)) {
      const items = obj.map((item: unknown, i) => {
        // Inside arrays JSON.stringify turns undefined into null, which would change the meaning.
        if (item === undefined) throw new TypeError(`canonical JSON: undefined at ${path}[${i}]`);
        return write(item, ancestors, `${path}[${i}]`);
      });
      return `[${items.join(',')}]`;
    }
    const proto = Object.getPrototypeOf(obj) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`canonical JSON: only plain objects are allowed (at ${path})`);
    }
    const record = obj as Record<string, unknown>;
    const members: string[] = [];
    // Default sort compares UTF-16 code units, which is locale independent.
    for (const key of Object.keys(record).sort()) {
      const member = record[key];
      // An absent optional field and one set to undefined mean the same thing: both are omitted.
      if (member === undefined) continue;
      members.push(`${JSON.stringify(key)}:${write(member, ancestors, `${path}.${key}`)}`);
    }
    return `{${members.join(',')}}`;
  } finally {
    ancestors.delete(obj);
  }
}
