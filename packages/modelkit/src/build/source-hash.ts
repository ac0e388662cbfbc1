import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_DIR = fileURLToPath(new URL('..', import.meta.url));
let cached: Promise<string> | undefined;

async function listSources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? listSources(join(dir, e.name)) : Promise.resolve(e.name.endsWith('.ts') ? [join(dir, e.name)] : []))),
  );
  return nested.flat();
}

/**
 * sha256 over the model kit's own source files. It is part of every generator hash, so a change to
 * how models are built invalidates cached builds without anyone remembering to bump a number.
 */
export function sourceHash(): Promise<string> {
  cached ??= (async () => {
    const hash = createHash('sha256');
    for (const file of (await listSources(SRC_DIR)).sort()) {
      hash.update(relative(SRC_DIR, file)).update('\0').update(await readFile(file)).update('\0');
    }
    return hash.digest('hex');
  })();
  return cached;
}
