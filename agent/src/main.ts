import { FlotillaError } from '@flotilla/protocol';
import { Agent } from './agent.ts';
import { loadAgentConfig } from './config/load.ts';
import { createLogger } from './logger.ts';

/** EX_CONFIG from sysexits.h: systemd and K3s show it as a configuration error, not a crash. */
const EXIT_CONFIG = 78;

async function main(): Promise<void> {
  let config;
  try {
    config = loadAgentConfig();
  } catch (err) {
    if (err instanceof FlotillaError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const agent = await Agent.create(config, { logger });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    agent.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
  logger.info({ deviceId: agent.deviceId, status: agent.status() }, 'agent started');
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`${e.code ?? 'FLT_INTERNAL'}: ${e.message}\n`);
  process.exit(1);
});
