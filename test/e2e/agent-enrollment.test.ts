import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, startServer, type TestServer } from '../../server/test/helpers/server.ts';
import { eventually, spawnAgent, type AgentProcess } from '../helpers/agent-process.ts';

interface DeviceView {
  status: string;
  online: boolean;
  lastSeenAt: number | null;
  inventory: { arch: string; executionProviders: string[]; cpu: { cores: number } } | null;
  desired: { generation: number } | null;
  reported: { appliedGeneration: number; models: Record<string, unknown> } | null;
  inSync: boolean;
  labels: Record<string, string>;
}

describe('agent daemon against the real server (child process)', () => {
  let t: TestServer;
  let agentDir: string;
  const agents: AgentProcess[] = [];

  beforeEach(async () => {
    t = await startServer({ enrollRetryAfterSec: 1 });
    agentDir = mkdtempSync(join(tmpdir(), 'flt-agent-'));
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.kill9()));
    await t.close();
    rmSync(agentDir, { recursive: true, force: true });
  });

  const start = (extra: Record<string, string> = {}) => {
    const a = spawnAgent({
      FLOTILLA_SERVER_URL: t.http,
      FLOTILLA_DEVICE_ID: 'edge-1',
      FLOTILLA_ENROLLMENT_TOKEN: ENROLL_TOKEN,
      FLOTILLA_DATA_DIR: agentDir,
      FLOTILLA_LABELS: 'site=lyon,tier=canary',
      FLOTILLA_HEARTBEAT_SEC: '5',
      ...extra,
    });
    agents.push(a);
    return a;
  };
  const device = async (): Promise<DeviceView | null> => {
    const res = await t.server.http.inject({ method: 'GET', url: '/v1/devices/edge-1', headers: auth(ADMIN_TOKEN) });
    return res.statusCode === 200 ? (res.json() as DeviceView) : null;
  };
  const admin = (method: 'POST' | 'PUT', url: string, payload?: object) =>
    t.server.http.inject({ method, url, headers: auth(ADMIN_TOKEN), ...(payload ? { payload } : {}) });

  it('enrolls, waits as pending, connects once accepted, reports inventory and applies desired state', async () => {
    const agent = start();
    const pending = await eventually(device, (d) => d?.status === 'pending', { what: 'pending device' });
    expect(pending!.labels).toEqual({ site: 'lyon', tier: 'canary' });
    expect(pending!.online).toBe(false);

    expect((await admin('POST', '/v1/devices/edge-1/accept')).statusCode).toBe(200);
    const online = await eventually(device, (d) => d?.online === true && d.inventory !== null, { what: 'online with inventory', timeoutMs: 30_000 });
    expect(online!.inventory!.executionProviders).toContain('cpu');
    expect(online!.inventory!.arch).toBe(process.arch === 'x64' ? 'x64' : process.arch);

    const identity = JSON.parse(readFileSync(join(agentDir, 'identity.json'), 'utf8')) as Record<string, unknown>;
    expect(JSON.stringify(identity)).toMatch(/fltd_/);

    await admin('PUT', '/v1/devices/edge-1/desired', { models: { digits: { version: '1.0.0' } }, config: { heartbeatSec: 5 } });
    const synced = await eventually(device, (d) => d?.inSync === true, { what: 'reported generation 1' });
    expect(synced!.reported!.appliedGeneration).toBe(1);
    expect(Object.keys(synced!.reported!.models)).toEqual(['digits']);
    expect(agent.proc.exitCode).toBeNull();
  });

  it('goes offline on a clean stop and on kill -9, and comes back with the same identity without enrolling again', async () => {
    await admin('POST', '/v1/devices', { id: 'edge-1' });
    let agent = start();
    await eventually(device, (d) => d?.online === true, { what: 'online', timeoutMs: 30_000 });
    const credentialBefore = readFileSync(join(agentDir, 'identity.json'), 'utf8');
    const enrollmentsBefore = await t.server.metrics.registry.getSingleMetricAsString('flotilla_enrollments_total');

    expect(await agent.stop()).toBe(0);
    await eventually(device, (d) => d?.online === false, { what: 'offline after stop' });

    agent = start({ FLOTILLA_ENROLLMENT_TOKEN: '' });
    await eventually(device, (d) => d?.online === true, { what: 'online after restart', timeoutMs: 30_000 });
    expect(readFileSync(join(agentDir, 'identity.json'), 'utf8')).toBe(credentialBefore);
    expect(await t.server.metrics.registry.getSingleMetricAsString('flotilla_enrollments_total')).toBe(enrollmentsBefore);

    await agent.kill9();
    // The broker notices the dead TCP connection (the kernel closes it with the process) and publishes the will.
    await eventually(device, (d) => d?.online === false, { what: 'offline after kill -9' });
  });

  it('is cut off at once when revoked and cannot come back', async () => {
    await admin('POST', '/v1/devices', { id: 'edge-1' });
    const agent = start();
    await eventually(device, (d) => d?.online === true, { what: 'online', timeoutMs: 30_000 });
    expect((await admin('POST', '/v1/devices/edge-1/revoke')).statusCode).toBe(200);
    await eventually(device, (d) => d?.online === false, { what: 'offline after revoke' });
    // The agent keeps running (it would keep serving cached models) but never gets back on.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await device())!.online).toBe(false);
    expect(agent.output()).toMatch(/FLT_DEVICE_REVOKED|not authorized|FLT_MQTT_AUTH_FAILED|refused/i);
  });

  it('starts and keeps running with the server down, and enrolls once it appears', async () => {
    const port = Number(new URL(t.http).port);
    await t.close();
    const agent = start({ FLOTILLA_SERVER_URL: `http://127.0.0.1:${port}` });
    await new Promise((r) => setTimeout(r, 3000));
    expect(agent.proc.exitCode).toBeNull();
    t = await startServer({ enrollRetryAfterSec: 1, autoAccept: true, http: { host: '127.0.0.1', port } });
    await eventually(device, (d) => d?.online === true, { what: 'online once the server is up', timeoutMs: 45_000 });
  });
});
