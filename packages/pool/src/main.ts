import { pino } from 'pino';
import { loadPoolConfig } from './config/load.ts';
import { startPoolWorker } from './build-pool-worker.ts';

/**
 * `tsx src/main.ts [--config pool.json]`: config from the file and FLOTILLA_POOL_* variables,
 * models loaded, then listening. SIGTERM / SIGINT drain the queues before the process exits.
 */
async function main(): Promise<void> {
  const config = loadPoolConfig();
  const logger = pino({ level: config.logLevel, base: { service: 'flotilla-pool' } });
  const { worker, url } = await startPoolWorker({ config, logger, defaultMetrics: true });
  logger.info({ url, batching: config.batching, repository: config.modelRepository }, 'pool worker listening');
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'pool worker stopping');
    void worker.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'pool worker failed to start', code: e.code ?? 'FLT_INTERNAL', error: e.message ?? String(err) })}\n`);
  process.exit(1);
});
