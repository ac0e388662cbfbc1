import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { buildModels } from './build/build-models.ts';
import { MODEL_NAMES } from './build/recipes.ts';

const USAGE = `usage: build-models build --out <dir> [--only name,name] [--force]

models: ${MODEL_NAMES.join(', ')}`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: 'string' }, only: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals[0] !== 'build' || !values.out) {
    console.error(USAGE);
    return 2;
  }
  const outDir = resolve(process.env.INIT_CWD ?? process.cwd(), values.out);
  const started = performance.now();
  const cards = await buildModels(outDir, {
    ...(values.only ? { only: values.only.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    force: values.force ?? false,
    log: (m) => console.log(m),
  });
  console.log(`${cards.length} models in ${outDir} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  for (const c of cards) {
    const acc = c.metrics.testAccuracy;
    console.log(`  ${c.name.padEnd(28)} ${c.precision} ${String(c.bytes).padStart(8)} B${acc === undefined ? '' : `  test accuracy ${(acc * 100).toFixed(2)}%`}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
