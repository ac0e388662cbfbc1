import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root and the deploy folder, from this file's place in the tree. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');

export function readRepoFile(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

/** Every file under a repository folder (relative paths), skipping node_modules. */
export function listFiles(dir: string, accept: (path: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const name of readdirSync(abs)) {
      if (name === 'node_modules') continue;
      const child = join(abs, name);
      if (statSync(child).isDirectory()) walk(child);
      else {
        const rel = relative(REPO_ROOT, child);
        if (accept(rel)) out.push(rel);
      }
    }
  };
  walk(join(REPO_ROOT, dir));
  return out.sort();
}
