import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { apiPath, ApiClient } from '@flotilla/cli';
import type { DeviceView } from '@flotilla/protocol';
import { device, healthyOn, reportedModel, waitForFleet } from './control/fleet.ts';
import { publishVersion } from './control/registry.ts';
import type { RolloutDevice } from './control/rollout-events.ts';
import { runRollout, type RolloutOutcome } from './control/rollouts.ts';
import { startAgent } from './fleet/agent-process.ts';
import { startPool } from './fleet/pool-process.ts';
import { startServer } from './fleet/server-process.ts';
import { BUILDS, prepareModels, type DemoModels } from './models.ts';
import { ProcessGroup } from './processes/process-group.ts';
import { evaluateChecks, type CheckResult, type DemoObservations, type RolloutResult } from './report/checks.ts';
import type { ProgressLog } from './report/progress-log.ts';
import { renderSummary } from './report/summary-table.ts';
import { DEMO, escalationPolicy, poolBody, v1Rollout, v2Rollout, v3Rollout } from './specs.ts';
import { emptyTraffic, totalTraffic } from './traffic/device-traffic.ts';
import { TrafficGenerator } from './traffic/traffic-generator.ts';
import { waitFor } from './wait.ts';

export interface DemoOptions {
  /** Holds the server's, the pool's and each agent's folder, and `logs/`. */
  workDir: string;
  /** The model kit's build cache. */
  modelsDir: string;
  log: ProgressLog;
  signal: AbortSignal;
}

export interface DemoResult {
  ok: boolean;
  observations: DemoObservations;
  checks: CheckResult[];
  /** Why the story stopped early, when it did. */
  error: Error | null;
}

/** Deadlines: generous, because the demo shares two cores; the conditions, not these, end each wait. */
const DEADLINE = { processStart: 90_000, fleet: 90_000, v1: 120_000, v2: 180_000, v3: 120_000, settle: 60_000, firstAnswers: 60_000 };

const kb = (bytes: number): string => `${Math.round(bytes / 1024)} KB`;

function result(r: RolloutOutcome | null): RolloutResult | null {
  return r && { id: r.id, version: r.version, state: r.state, reason: r.reason, counts: r.counts, durationMs: r.durationMs };
}

/**
 * The whole loop on one machine: server, pool worker and three agents as separate processes,
 * three releases, two staged rollouts under live traffic, and the summary. Every process started
 * here is stopped before this returns, whatever happened.
 */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const { log, signal } = opts;
  const logDir = join(opts.workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const group = new ProcessGroup();
  let api: ApiClient | undefined;
  let traffic: TrafficGenerator | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const rollouts: { v1: RolloutOutcome | null; v2: RolloutOutcome | null; v3: RolloutOutcome | null } = { v1: null, v2: null, v3: null };
  let finalViews: DeviceView[] = [];
  let error: Error | null = null;

  try {
    log.step('Build the models (model kit, cached between runs) while the control server starts');
    // The server needs no model to start, so it boots while the model kit works.
    const serverStarting = startServer({ group, dir: join(opts.workDir, 'server'), logDir, timeoutMs: DEADLINE.processStart, signal });
    serverStarting.catch(() => undefined);
    const models: DemoModels = await prepareModels(opts.modelsDir);
    const { cards } = models;
    log.line(`${DEMO.model} ${DEMO.versions.v1}: ${BUILDS.v1}, ${kb(cards.v1.bytes)}, test accuracy ${((cards.v1.metrics.testAccuracy ?? 0) * 100).toFixed(2)}%`);
    log.line(`${DEMO.model} ${DEMO.versions.v2}: ${BUILDS.v2}, ${kb(cards.v2.bytes)}, test accuracy ${((cards.v2.metrics.testAccuracy ?? 0) * 100).toFixed(2)}%`);
    log.line(`${DEMO.model} ${DEMO.versions.v3}: ${BUILDS.v3}, broken on purpose (${cards.v3.fault ?? 'fault'}): it loads, but fails its golden self-test`);
    log.line(`${DEMO.cloudModel}: ${BUILDS.cloud}, ${kb(cards.cloud.bytes)}, test accuracy ${((cards.cloud.metrics.testAccuracy ?? 0) * 100).toFixed(2)}%`);

    log.step('Start a cloud pool worker and three agents, each with its own data folder');
    // The pool needs nothing from the server, and the agents only its URL: they start while the
    // others are still loading.
    const poolStarting = startPool({ group, dir: join(opts.workDir, 'pool'), logDir, modelName: DEMO.cloudModel, modelFile: models.files.cloud, timeoutMs: DEADLINE.processStart, signal });
    poolStarting.catch(() => undefined);
    const server = await serverStarting;
    log.line(`server  ${server.endpoints.http}/v1  (OpenAPI ${server.endpoints.http}/docs, MQTT ${server.endpoints.mqtt}, pid ${server.process.pid})`);
    api = new ApiClient({ baseUrl: server.endpoints.http, token: server.endpoints.adminToken });
    for (const id of DEMO.devices) await api.send('POST', '/v1/devices', { id, labels: { ...DEMO.fleetLabel } });
    log.line(`pre-authorized ${DEMO.devices.join(', ')} (labels fleet=${DEMO.fleetLabel.fleet}, region=${DEMO.fleetLabel.region})`);
    const agentsStarting = Promise.all(
      DEMO.devices.map((id) =>
        startAgent({
          group,
          spec: { deviceId: id, labels: { ...DEMO.fleetLabel } },
          dir: join(opts.workDir, id),
          logDir,
          serverUrl: server.endpoints.http,
          enrollmentToken: server.endpoints.enrollmentToken,
          timeoutMs: DEADLINE.processStart,
          signal,
        }),
      ),
    );
    agentsStarting.catch(() => undefined);
    const pool = await poolStarting;
    log.line(`pool    ${pool.url}/v2  serving ${DEMO.cloudModel} (pid ${pool.process.pid})`);
    const agents = await agentsStarting;
    for (const [i, a] of agents.entries()) log.line(`${DEMO.devices[i]}  local KServe v2 API ${a.localApi}/v2 (pid ${a.process.pid}, data in ${join(opts.workDir, DEMO.devices[i]!)})`);
    await waitForFleet(api, DEMO.devices, { timeoutMs: DEADLINE.fleet, signal });
    log.line('all three enrolled, accepted and connected over MQTT');

    log.step('Register the releases and the edge-to-cloud route');
    const releases = [
      { version: DEMO.versions.v1, card: cards.v1, file: models.files.v1, description: 'fp32 edge build' },
      { version: DEMO.versions.v2, card: cards.v2, file: models.files.v2, description: 'int8 edge build, static QDQ' },
      { version: DEMO.versions.v3, card: cards.v3, file: models.files.v3, description: 'int8 edge build with damaged weights' },
    ];
    for (const r of releases) {
      const { sha256 } = await publishVersion(api, { model: DEMO.model, ...r });
      log.line(`published ${DEMO.model}@${r.version} (${r.description}), signed manifest, artifact sha256 ${sha256.slice(0, 12)}…`);
    }
    await api.send('PUT', apiPath`/v1/pools/${DEMO.pool}`, poolBody(pool.url));
    await api.send('PUT', apiPath`/v1/escalation-policies/${DEMO.model}`, escalationPolicy);
    log.line(`pool ${DEMO.pool} (region ${DEMO.region}) → ${pool.url}; policy: escalate when max probability < ${escalationPolicy.maxProbBelow}, budget ${escalationPolicy.budgetMs} ms`);

    log.step(`Install ${DEMO.versions.v1} on every device`);
    rollouts.v1 = await runRollout(api, v1Rollout, { log, label: 'v1', timeoutMs: DEADLINE.v1, signal });
    const client = api;
    await waitFor(() => Promise.all(DEMO.devices.map((id) => device(client, id))), (ds) => ds.every((d) => healthyOn(d, DEMO.model, DEMO.versions.v1)), {
      what: `every device healthy on ${DEMO.versions.v1}`,
      timeoutMs: DEADLINE.settle,
      signal,
    });

    log.step('Serve inference traffic: MNIST digits to each device, hard ones escalated to the pool');
    traffic = new TrafficGenerator({ targets: agents.map((a, i) => ({ deviceId: DEMO.devices[i]!, url: a.localApi })), model: DEMO.model, digits: models.digits });
    traffic.start();
    const t = traffic;
    const trafficLine = (): void => {
      const sum = totalTraffic(t.stats().values());
      log.line(`traffic │ ${sum.requests} requests: edge ${sum.edge} · cloud ${sum.cloud} · edge-fallback ${sum.edgeFallback} · failed ${sum.failed}`);
    };
    await waitFor(() => t.stats(), (s) => [...s.values()].every((d) => d.requests >= 10), { what: 'every device to answer traffic', timeoutMs: DEADLINE.firstAnswers, signal });
    trafficLine();
    ticker = setInterval(trafficLine, 5_000);

    log.step(`Roll ${DEMO.versions.v2} out in stages (1 device → 2 → all) while traffic flows`);
    rollouts.v2 = await runRollout(api, v2Rollout, { log, label: 'v2', timeoutMs: DEADLINE.v2, signal });

    log.step(`Roll the broken ${DEMO.versions.v3} out: the canary must refuse it`);
    const v3 = await runRollout(api, v3Rollout, { log, label: 'v3', timeoutMs: DEADLINE.v3, signal });
    rollouts.v3 = v3;
    const canary = v3.devices.find((d) => d.stage === 0);
    if (canary) {
      const back = await waitFor(() => device(client, canary.deviceId), (d) => healthyOn(d, DEMO.model, DEMO.versions.v2), {
        what: `${canary.deviceId} to report ${DEMO.versions.v2} healthy after the revert`,
        timeoutMs: DEADLINE.settle,
        signal,
      });
      log.line(`${canary.deviceId} reports ${reportedModel(back, DEMO.model)?.version ?? '?'} healthy again (desired generation ${back.desired?.generation ?? '?'})`);
    }
    clearInterval(ticker);
    trafficLine();
  } catch (err) {
    error = err instanceof Error ? err : new Error(String(err));
  } finally {
    clearInterval(ticker);
    await traffic?.stop();
    if (api) {
      const client = api;
      finalViews = (await Promise.allSettled(DEMO.devices.map((id) => device(client, id)))).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      await api.close();
    }
    log.step('Stop every process');
    await group.close();
    log.line(`stopped ${group.processes.map((p) => `${p.name}${p.exitInfo?.code === 0 ? '' : ` (${p.exitInfo?.signal ?? `exit ${p.exitInfo?.code}`})`}`).join(', ')}`);
  }

  const observations = observe(rollouts, finalViews, traffic, log.elapsedMs());
  const checks = evaluateChecks(observations);
  // Interrupted on purpose: a table of checks that never got their chance would only be noise.
  if (signal.aborted) log.raw(`\nInterrupted after ${(log.elapsedMs() / 1000).toFixed(1)} s; every process stopped.`);
  else log.raw(renderSummary(observations, checks));
  return { ok: error === null && checks.every((c) => c.ok), observations, checks, error };
}

/** Turns what the demo saw into the observations the checks judge. */
function observe(
  rollouts: { v1: RolloutOutcome | null; v2: RolloutOutcome | null; v3: RolloutOutcome | null },
  views: DeviceView[],
  traffic: TrafficGenerator | undefined,
  wallMs: number,
): DemoObservations {
  const stats = traffic?.stats();
  const v3 = rollouts.v3;
  const v3Row = (id: string): RolloutDevice | undefined => v3?.devices.find((d) => d.deviceId === id);
  const v3Failure = (id: string): string | null => {
    const e = v3?.events.find((ev) => ev.deviceId === id && ev.kind === 'device.failed');
    const code = e && e.details && typeof e.details === 'object' ? (e.details as { error?: unknown }).error : undefined;
    return typeof code === 'string' ? code : (v3Row(id)?.error ?? null);
  };
  return {
    versions: { ...DEMO.versions },
    devices: DEMO.devices.map((id) => {
      const view = views.find((v) => v.id === id);
      const running = view ? reportedModel(view, DEMO.model) : null;
      return {
        deviceId: id,
        canary: v3Row(id)?.stage === 0,
        running: running ? { version: running.version, state: running.state } : null,
        traffic: stats?.get(id) ?? emptyTraffic(),
        notifiedOfV3: v3 !== null && (v3Row(id)?.notifiedAt != null || v3.events.some((e) => e.deviceId === id && e.kind === 'device.notified')),
        v3Error: v3 ? v3Failure(id) : null,
      };
    }),
    v1: result(rollouts.v1),
    v2: result(rollouts.v2),
    v3: result(v3),
    wallMs,
  };
}
