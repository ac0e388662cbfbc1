import { join } from 'node:path';
import { FlotillaError } from '@flotilla/protocol';
import { Agent } from './agent.ts';
import { loadAgentConfig } from './config/load.ts';
import { cacheConfigFor, type FrozenAgentConfig } from './config/schema.ts';
import { Registry } from 'prom-client';
import { CloudClient, Escalator, EscalationMetrics, InputSpool, InputUploader, type DeviceCredential, type EnqueueEvent } from './escalation/index.ts';
import { PendingApplier, type DesiredStateApplier } from './state/applier.ts';
import { InferenceService } from './inference/service/inference-service.ts';
import { DriftRecorder } from './inference/drift-summary.ts';
import { systemTimers } from './runtime/timers.ts';
import { startLocalApi, type RunningLocalApi } from './local-api/start-local-api.ts';
import { createLogger, type Logger } from './logger.ts';
import { agentOtaHost, otaConfigFrom } from './ota/agent-host.ts';
import { ModelManager } from './ota/model-manager.ts';

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
  // Owned here, closed last: the OTA manager installs into it and the local API serves from it.
  // One scrape endpoint for the whole daemon: the agent's own metrics and the inference metrics.
  const inferenceMetrics = new Registry();
  // Drift summaries go to the agent's outbox (low priority: telemetry), which exists once the agent does.
  const driftSink: { publish?: (kind: string, data: Record<string, unknown>) => void } = {};
  const drift = config.drift.enabled
    ? new DriftRecorder({
        intervalMs: config.drift.intervalMs,
        inputRange: [config.drift.inputRange[0] as number, config.drift.inputRange[1] as number],
        sampleEvery: config.drift.sampleEvery,
        timers: systemTimers,
        publish: (kind, data) => driftSink.publish?.(kind, data),
      })
    : undefined;
  const inference = new InferenceService({
    registry: inferenceMetrics,
    ...(drift && { observer: drift }),
    cache: (model) => cacheConfigFor(config.inference.cache, model),
  });
  const manager = config.ota.enabled
    ? new ModelManager({ dataDir: config.dataDir, inference, logger: logger.child({ part: 'ota' }), config: otaConfigFrom(config.ota) })
    : undefined;
  // Hard requests go on to cloud pools: the escalator sits in front of local inference, and every
  // applied desired state carries its policies and routing.
  const cloud = new CloudClient();
  // Hard examples go to the agent's durable outbox, which exists once the agent does.
  const hardExamples: { sink?: EnqueueEvent; credential?: DeviceCredential } = {};
  const escalationLogger = logger.child({ part: 'escalation' });
  // Inputs too large for an event wait on disk and go up over HTTPS with the device credential.
  const uploader = openLargeInputs(config, escalationLogger, () => hardExamples.credential?.());
  const escalator = new Escalator({
    local: inference,
    cloud,
    logger: escalationLogger,
    enqueueEvent: (kind, data, opts) => hardExamples.sink?.(kind, data, opts),
    metrics: new EscalationMetrics(inferenceMetrics),
    ...(uploader && { largeInputs: uploader }),
  });
  const models = manager ?? new PendingApplier();
  const applier: DesiredStateApplier = {
    apply: async (desired) => {
      escalator.configure(desired.escalation);
      return models.apply(desired);
    },
  };
  const agent = await Agent.create(config, { logger, applier });
  hardExamples.sink = (kind, data, opts) => agent.enqueueEvent(kind, data, opts);
  hardExamples.credential = () => agent.deviceCredential();
  // Inputs spooled while offline (or before a restart) go up with the outbox replay.
  if (uploader) agent.on('connected', () => void uploader.uploader.kick());
  driftSink.publish = (kind, data) => {
    try {
      agent.enqueueEvent(kind, data, { priority: 'low' });
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'drift summary not recorded');
    }
  };
  let localApi: RunningLocalApi | undefined;
  const closeAll = async (): Promise<void> => {
    // Escalation first: a hard example must not reach an outbox that is already closed.
    escalator.close();
    // An upload in flight is cut; its input stays spooled for the next start.
    await uploader?.uploader.close();
    // The last window goes to the outbox before it closes.
    drift?.close();
    await agent.close();
    await Promise.allSettled([manager?.close(), localApi?.close(), cloud.close()]);
    await inference.close();
  };
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    closeAll().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (manager) {
    manager.attach(agentOtaHost(agent));
    // Pin the release-signing keys right after the first enrollment (trust on first use).
    agent.on('enrollment', (state) => {
      if (state === 'accepted') manager.ensureTrust().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not pin release-signing keys yet'));
    });
    // Cached models load before any network: a device with no server in reach serves at once.
    await manager.start();
  }
  if (config.localApi.enabled) {
    try {
      const metrics = Registry.merge([agent.metrics.registry, inferenceMetrics]);
      localApi = await startLocalApi({ inference: escalator, metrics, host: config.localApi.host, port: config.localApi.port });
      logger.info({ url: localApi.url }, 'local inference API listening');
    } catch (err) {
      // A taken port must not stop the daemon: it still installs models and reports over MQTT.
      logger.error({ host: config.localApi.host, port: config.localApi.port, err: (err as Error).message }, 'local inference API could not listen');
    }
  }
  cloud.start();
  drift?.start();
  await agent.start();
  logger.info({ deviceId: agent.deviceId, status: agent.status() }, 'agent started');
}

/** The input spool and its uploader; undefined when the spool is off or cannot be opened. */
function openLargeInputs(
  config: FrozenAgentConfig,
  logger: Logger,
  credential: DeviceCredential,
): { spool: InputSpool; uploader: InputUploader } | undefined {
  const maxBytes = config.escalation.inputSpoolMaxBytes;
  if (maxBytes === 0) return undefined;
  const dir = join(config.dataDir, 'hard-example-inputs');
  let spool: InputSpool;
  try {
    spool = InputSpool.open(dir, { maxBytes });
  } catch (err) {
    // Not worth stopping the daemon for: large inputs are then left out of their examples.
    logger.error({ dir, err: (err as Error).message }, 'hard-example input spool could not be opened; large inputs will be left out');
    return undefined;
  }
  return { spool, uploader: new InputUploader({ spool, serverUrl: config.serverUrl, credential, logger }) };
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`${e.code ?? 'FLT_INTERNAL'}: ${e.message}\n`);
  process.exit(1);
});
