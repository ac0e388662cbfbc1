import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../../../server/test/helpers/server.ts';
import { simulatedFleet } from '../../../server/test/rollouts/simulated-device.ts';
import { publishStubReleases } from '../../../server/test/rollouts/stub-release.ts';
import { adminEnv } from './helpers/env.ts';
import { flotilla } from './helpers/run-cli.ts';

describe('flotilla rollout', () => {
  let t: TestServer;
  let env: Record<string, string>;
  let clients: Awaited<ReturnType<typeof simulatedFleet>> = [];
  let dir: string;
  const target = ['--model', 'digits', '--labels', 'site=lyon'];

  beforeAll(async () => {
    t = await startServer();
    env = adminEnv(t);
    dir = mkdtempSync(join(tmpdir(), 'flt-cli-rollout-'));
    // Rollouts must name a model and a published version the registry holds.
    await publishStubReleases(t, 'digits', ['2.0.0', '3.0.0', '4.0.0', '5.0.0']);
    clients = await simulatedFleet(t, ['cam-01', 'cam-02', 'cam-03', 'cam-04'], { site: 'lyon' });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('plans a rollout without starting it: target count, devices per stage, estimate', async () => {
    const plan = await flotilla(['rollout', 'plan', ...target, '--version', '2.0.0', '--id', 'lyon-2', '--stages', '25,100', '--bake', '60'], { env });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^targets:\s+4 devices$/m);
    expect(plan.stdout).toMatch(/^estimate:\s+\S/m);
    expect(plan.stdout).toMatch(/^1\s+1\s+1\s+1\s+1m\s+no\s+cam-0\d$/m);
    expect(plan.stdout).toMatch(/^2\s+3\s+4\s+3\s+1m\s+no\s+/m);
    const json = (await flotilla(['rollout', 'plan', ...target, '--version', '2.0.0', '--stages', '25,100', '--json'], { env })).json();
    expect(json.targetCount).toBe(4);
    expect(json.stages.map((s: { size: number }) => s.size)).toEqual([1, 3]);
    expect((await flotilla(['rollout', 'status', 'lyon-2'], { env })).stderr).toContain('FLT_ROLLOUT_NOT_FOUND');
  });

  it('creates a rollout from flags and watches it to completed, one JSON line per event', async () => {
    const created = await flotilla(['rollout', 'create', ...target, '--version', '2.0.0', '--id', 'lyon-2', '--stages', '25,50,100', '--json'], { env });
    expect(created.code).toBe(0);
    expect(created.json()).toMatchObject({ id: 'lyon-2', state: 'running', targetCount: 4 });

    const watched = await flotilla(['rollout', 'status', 'lyon-2', '--watch', '--json'], { env });
    expect(watched.code).toBe(0);
    const events = watched.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; data: { state: string; counts?: { succeeded: number } } });
    expect(events.at(-1)).toEqual({ event: 'end', data: { id: 'lyon-2', state: 'completed', reason: null } });
    expect(events.at(-2)).toMatchObject({ event: 'progress', data: { state: 'completed', counts: { succeeded: 4 } } });

    const status = await flotilla(['rollout', 'status', 'lyon-2'], { env });
    expect(status.stdout).toMatch(/^state:\s+completed$/m);
    expect(status.stdout).toMatch(/^3\s+2\s+pending 0, notified 0, baking 0, succeeded 2\/2 needed$/m);
  });

  it('draws a bar per stage on a terminal and prints the final funnel', async () => {
    const spec = join(dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ id: 'lyon-3', target: { labels: { site: 'lyon' } }, model: 'digits', version: '3.0.0', stages: [{ count: 1 }, { percent: 100 }] }));
    expect((await flotilla(['rollout', 'create', '--file', spec], { env, cwd: dir })).code).toBe(0);
    const watched = await flotilla(['rollout', 'status', 'lyon-3', '--watch'], { env, tty: true });
    expect(watched.code).toBe(0);
    expect(watched.stderr).toMatch(/stage 1 \[.*\] 1\/1 succeeded/);
    expect(watched.stderr).toMatch(/stage 2 \[.*\] 3\/3 succeeded/);
    expect(watched.stdout).toMatch(/^state:\s+completed$/m);
  });

  it('pauses, resumes and cancels a rollout, and a watch of a cancelled one exits 1', async () => {
    const created = await flotilla(['rollout', 'create', ...target, '--version', '4.0.0', '--id', 'lyon-4', '--stages', '25,100', '--approve'], { env });
    expect(created.code).toBe(0);
    const paused = await flotilla(['rollout', 'pause', 'lyon-4', '--reason', 'night shift'], { env });
    expect([paused.code, paused.stdout]).toEqual([0, 'lyon-4: paused (night shift)\n']);
    const again = await flotilla(['rollout', 'pause', 'lyon-4'], { env });
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('FLT_ROLLOUT_STATE_CONFLICT')]);
    expect((await flotilla(['rollout', 'resume', 'lyon-4', '--json'], { env })).json()).toMatchObject({ state: 'running', reason: null });
    expect((await flotilla(['rollout', 'cancel', 'lyon-4', '--reason', 'wrong build'], { env })).stdout).toBe('lyon-4: cancelled (wrong build)\n');
    const watched = await flotilla(['rollout', 'status', 'lyon-4', '--watch'], { env });
    expect([watched.code, watched.stderr]).toEqual([1, expect.stringContaining('FLT_CLI_ROLLOUT_NOT_COMPLETED')]);
  });

  it('refuses a bad spec with exit 1 and the server code, and a bad command line with exit 2', async () => {
    const shrinking = await flotilla(['rollout', 'create', ...target, '--version', '5.0.0', '--stages', '50,10'], { env });
    expect([shrinking.code, shrinking.stderr]).toEqual([1, expect.stringContaining('FLT_ROLLOUT_SPEC_INVALID')]);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ target: { labels: { site: 'lyon' } }, model: 'digits', version: '5.0.0', stages: [{ count: 1, percent: 10 }] }));
    const fromFile = await flotilla(['rollout', 'create', '--file', bad, '--json'], { env });
    expect(fromFile.code).toBe(1);
    expect(JSON.parse(fromFile.stderr)).toMatchObject({ error: { code: 'FLT_ROLLOUT_SPEC_INVALID', status: 400 } });
    const noModel = await flotilla(['rollout', 'plan', '--version', '5.0.0', '--labels', 'site=lyon'], { env });
    expect([noModel.code, noModel.stderr]).toEqual([2, expect.stringContaining('--model is required')]);
  });
});
