import { FlotillaError } from '@flotilla/protocol';
import { loadConfig } from './config/load.ts';
import { buildServer, readSecretFile } from './server.ts';

/** Entry point: `pnpm start`. Configuration from FLOTILLA_CONFIG (a JSON file) and FLOTILLA_* variables. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof FlotillaError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const server = await buildServer(config);
  const addr = await server.listen();
  const admin = server.bootstrap.adminToken ?? (config.adminToken ? '(from configuration)' : readSecretFile(config.dataDir, 'admin-token') ?? '(existing token)');
  const enroll = server.bootstrap.enrollmentToken ?? (config.enrollmentToken ? '(from configuration)' : readSecretFile(config.dataDir, 'enrollment-token') ?? '(existing token)');
  process.stdout.write(
    [
      'Flotilla control server is up',
      `  REST API        ${addr.http}/v1   (OpenAPI: ${addr.http}/docs)`,
      `  health/metrics  ${addr.http}/healthz  ${addr.http}/readyz  ${addr.http}/metrics`,
      `  MQTT            ${addr.mqtt}${addr.ws ? `   WebSocket: ${addr.ws}` : ''}`,
      `  data folder     ${config.dataDir}`,
      `  admin token     ${admin}`,
      `  enrollment      ${enroll}`,
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`flotilla-server failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
