import { join, resolve } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import { loadConfig } from './config/load.ts';
import { backupDatabase } from './db/backup.ts';

const USAGE = 'usage: tsx server/src/backup-main.ts <destination-file> [--overwrite]';

/**
 * Online backup of the server database: `tsx server/src/backup-main.ts <destination> [--overwrite]`.
 * Reads the same configuration as the server (FLOTILLA_CONFIG, FLOTILLA_DATA_DIR, …) to find
 * `<dataDir>/flotilla.db`, and may run while the server is up. Exit 0 with the backup written and
 * verified, 1 when it failed (nothing is left at the destination), 2 for a wrong command line.
 */
async function main(argv: readonly string[]): Promise<number> {
  const overwrite = argv.includes('--overwrite');
  const rest = argv.filter((a) => a !== '--overwrite');
  if (rest.length !== 1 || rest[0]!.startsWith('-')) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  try {
    const config = loadConfig();
    const result = await backupDatabase(join(resolve(config.dataDir), 'flotilla.db'), rest[0]!, { overwrite });
    process.stdout.write(
      `backup written: ${result.destination} (${result.bytes} bytes, schema version ${result.schemaVersion}, integrity ${result.integrity}) from ${result.source}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof FlotillaError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`backup failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
