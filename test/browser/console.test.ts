import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, auth, enrollAccepted, enrollBody, startServer, tokenFor, type TestServer } from '../../server/test/helpers/server.ts';
import { cspViolations, launchChromium, openConsole, screenshot, waitForText, type ConsolePage } from './browser.ts';
import { ScriptedDevice, jetsonInventory } from './scripted-device.ts';
import { publishStubRelease } from './stub-releases.ts';

const HOSTILE = '<img src=x onerror="alert(document.domain)">';
const LYON = ['cam-01', 'cam-02', 'cam-03', 'cam-04'];
const ROLLOUT = 'lyon-digits-11';

/**
 * The web console end to end: a real server on port 0, devices on the real MQTT channel, and the
 * console driven in headless Chromium. The tests run in order on one fleet: the rollout that the
 * live-progress test moves is the one the operator then pauses and resumes.
 */
describe('web console in headless Chromium', () => {
  let t: TestServer;
  let browser: Browser;
  let operator: string;
  let viewer: string;
  const devices = new Map<string, ScriptedDevice>();
  const pages: ConsolePage[] = [];

  const open = async (token: string): Promise<Page> => {
    const c = await openConsole(browser, t.http, token);
    pages.push(c);
    return c.page;
  };

  beforeAll(async () => {
    t = await startServer();
    operator = await tokenFor(t, 'operator');
    viewer = await tokenFor(t, 'viewer');
    await publishStubRelease(t, 'digits', '1.1.0');
    await publishStubRelease(t, 'vision', '9.9.9');
    const connect = async (id: string, labels: Record<string, string>, cpuModel?: string) => {
      const credential = await enrollAccepted(t, id);
      const res = await t.server.http.inject({ method: 'PATCH', url: `/v1/devices/${id}/labels`, headers: auth(ADMIN_TOKEN), payload: { set: labels } });
      expect(res.statusCode).toBe(200);
      const d = await ScriptedDevice.connect(t.mqtt, id, credential);
      devices.set(id, d);
      await d.inventory(jetsonInventory(cpuModel));
      await d.report({ digits: { version: '1.0.0', state: 'healthy' } });
      return d;
    };
    for (const id of LYON) await connect(id, { site: 'lyon', tier: 'canary' });
    // An accepted device that has gone offline, and one still waiting for an admin.
    const gone = await connect('cam-05', { site: 'paris' }, HOSTILE);
    await gone.event('ota.rollback', { note: HOSTILE, from: '1.1.0', to: '1.0.0' });
    await gone.event('ota.health', { healthy: true });
    await gone.close();
    expect((await t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody('gate-06') })).statusCode).toBe(202);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    for (const c of pages.splice(0)) await c.context.close().catch(() => {});
    await browser?.close();
    for (const d of devices.values()) await d.close();
    await t?.close();
  });

  const fleetSettled = async () => {
    const res = await t.server.http.inject({ method: 'GET', url: '/v1/fleet/summary', headers: auth(viewer) });
    return res.json() as { online: number; offline: number; modelVersions: unknown[] };
  };

  const stageDevices = async (stage: number): Promise<string[]> => {
    const res = await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${ROLLOUT}/devices?stage=${stage}`, headers: auth(viewer) });
    return (res.json() as { items: Array<{ deviceId: string }> }).items.map((d) => d.deviceId);
  };

  it('signs in with an API token and shows the fleet counts, versions per model and the device table', async () => {
    // Presence and reports arrive over MQTT: wait for the server to have them before looking.
    for (let i = 0; i < 100; i++) {
      const s = await fleetSettled();
      if (s.online === 4 && s.offline === 1 && s.modelVersions.length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const page = await open(viewer);
    expect(await page.locator('#who-role').textContent()).toBe('viewer');
    await waitForText(page, '#count-online .stat-value', '4');
    expect(await page.locator('#count-offline .stat-value').textContent()).toBe('1');
    expect(await page.locator('#count-pending .stat-value').textContent()).toBe('1');
    expect(await page.locator('#count-total .stat-value').textContent()).toBe('6');
    expect(await page.locator('#model-versions tbody tr').allTextContents()).toEqual(['digits1.0.05']);
    expect(await page.locator('#devices tbody tr').count()).toBe(6);
    await screenshot(page, 'fleet-overview');

    // Filters go to the server: offline accepted devices are only cam-05.
    await page.locator('#filter-online').selectOption('false');
    await page.locator('#filter-status').selectOption('accepted');
    await waitForText(page, '#devices tbody', /cam-05/);
    expect(await page.locator('#devices tbody tr .device-link').allTextContents()).toEqual(['cam-05']);
    await page.locator('#filter-label').fill('site=lyon');
    await page.locator('#filter-online').selectOption('');
    await page.locator('#device-filters button[type=submit]').click();
    await waitForText(page, '#devices tbody', /cam-04/);
    expect(await page.locator('#devices tbody tr .device-link').allTextContents()).toEqual(LYON);
  });

  it('shows a device with its labels, inventory, desired and reported state, and recent events newest first', async () => {
    const page = await open(viewer);
    await page.locator('#devices').waitFor();
    await page.locator('.device-link', { hasText: 'cam-05' }).click();
    await waitForText(page, '#device-id', 'cam-05');
    expect(await page.locator('#device-presence').textContent()).toBe('offline');
    expect(await page.locator('#device-labels').textContent()).toBe('site=paris');
    const inventory = (await page.locator('#device-inventory').textContent()) ?? '';
    for (const fact of ['arm64', 'Orin (nvgpu) (compute 8.7', '8 cores', 'tensorrt, cuda, cpu', 'JetPack6.0', '12.2']) expect(inventory).toContain(fact);
    expect(await page.locator('#device-models tbody tr').allTextContents()).toEqual(['digits——1.0.0healthy—']);
    expect(await page.locator('#device-events tbody tr td:nth-child(2)').allTextContents()).toEqual(['ota.health', 'ota.rollback']);
    await screenshot(page, 'device-detail');
  });

  it('shows hostile strings from devices and rollouts as text: no element is injected and nothing runs', async () => {
    const created = await t.server.http.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: auth(operator),
      payload: { id: 'paris-hostile', name: `paris ${HOSTILE}`, target: { labels: { site: 'paris' } }, model: 'vision', version: '9.9.9', stages: [{ count: 1 }] },
    });
    expect(created.statusCode).toBe(201);
    const c = await openConsole(browser, t.http, viewer);
    pages.push(c);
    const page = c.page;
    await page.goto(`${t.http}/console/#/devices/cam-05`);
    await waitForText(page, '#device-id', 'cam-05');
    expect(await page.locator('#device-inventory').textContent()).toContain(HOSTILE);
    expect(await page.locator('#device-events').textContent()).toContain(HOSTILE.replace(/"/g, '\\"'));
    expect(await page.locator('main img').count()).toBe(0);

    await page.goto(`${t.http}/console/#/rollouts`);
    await waitForText(page, '#rollouts tbody', /paris-hostile/);
    expect(await page.locator('#rollouts').textContent()).toContain(`paris ${HOSTILE}`);
    await page.locator('.rollout-link', { hasText: 'paris-hostile' }).click();
    await waitForText(page, '#rollout-header', /paris <img/);
    expect(await page.locator('main img').count()).toBe(0);
    expect(c.problems).toEqual([]);
    expect(await cspViolations(page)).toEqual([]);
    // The policy that would stop an injected handler anyway.
    const res = await fetch(`${t.http}/console/`);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    await screenshot(page, 'rollout-hostile-name');
  });

  it('follows a rollout live: the stage funnel moves as devices report, without a reload', async () => {
    const page = await open(operator);
    const spec = { id: ROLLOUT, name: 'digits 1.1.0 to Lyon', target: { labels: { site: 'lyon' } }, model: 'digits', version: '1.1.0', stages: [{ count: 1 }, { percent: 100, requireApproval: true }] };
    expect((await t.server.http.inject({ method: 'POST', url: '/v1/rollouts', headers: auth(operator), payload: spec })).statusCode).toBe(201);
    await page.locator('a[data-nav=rollouts]').click();
    await page.locator('.rollout-link', { hasText: ROLLOUT }).click();
    await waitForText(page, '#live', 'live');
    await page.evaluate(() => ((globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true));
    const step = (stage: number, name: string) => `#stage-${stage} [data-step=${name}] .step-value`;

    // The canary is the stage-1 device of the rollout; it has been sent 1.1.0 and now reports each step by hand.
    await waitForText(page, step(0, 'notified'), '1');
    const [canaryId] = await stageDevices(0);
    const canary = devices.get(canaryId!)!;
    await canary.waitDesired((x) => x.models.digits?.version === '1.1.0');
    await canary.report({ digits: { version: '1.0.0', state: 'downloading', target: '1.1.0' } });
    await waitForText(page, step(0, 'downloading'), '1');
    await canary.report({ digits: { version: '1.0.0', state: 'verified', target: '1.1.0' } });
    await waitForText(page, step(0, 'verified'), '1');
    await canary.report({ digits: { version: '1.1.0', state: 'activated' } });
    await waitForText(page, step(0, 'activated'), '1');
    await screenshot(page, 'rollout-live-canary');
    await canary.report({ digits: { version: '1.1.0', state: 'healthy' } });
    await waitForText(page, step(0, 'succeeded'), '1');
    expect(await page.locator(step(0, 'healthy')).textContent()).toBe('1');
    await waitForText(page, '#rollout-state', 'awaitingApproval');
    expect(await page.locator('#stage-0 .stage-progress-text').textContent()).toMatch(/^1 \/ 1 succeeded/);
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await screenshot(page, 'rollout-awaiting-approval');
  });

  it("lets an operator pause, resume, approve the next stage and revert, from the rollout's buttons", async () => {
    const page = await open(operator);
    await page.goto(`${t.http}/console/#/rollouts/${ROLLOUT}`);
    await waitForText(page, '#rollout-state', 'awaitingApproval');
    expect(await page.locator('#cmd-resume').isDisabled()).toBe(true);
    await page.locator('#cmd-pause').click();
    await waitForText(page, '#rollout-state', 'paused');
    expect((await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${ROLLOUT}`, headers: auth(viewer) })).json()).toMatchObject({ state: 'paused' });
    expect(await page.locator('#cmd-approve').isDisabled()).toBe(true);
    await screenshot(page, 'rollout-paused');
    await page.locator('#cmd-resume').click();
    await waitForText(page, '#rollout-state', 'awaitingApproval');
    await page.locator('#cmd-approve').click();
    await waitForText(page, '#rollout-state', 'running');
    await waitForText(page, '#rollout-stage', '2 of 2');

    // The three devices of stage 2 report healthy; the stream carries the rollout to completed.
    const rest = (await stageDevices(1)).map((id) => devices.get(id)!);
    expect(rest).toHaveLength(3);
    for (const d of rest) {
      await d.waitDesired((x) => x.models.digits?.version === '1.1.0');
      await d.report({ digits: { version: '1.1.0', state: 'healthy' } });
    }
    await waitForText(page, '#rollout-state', 'completed');
    await waitForText(page, '#live', 'ended');
    expect(await page.locator('#stage-1 [data-step=succeeded] .step-value').textContent()).toBe('3');
    expect(await page.locator('#cmd-pause').isDisabled()).toBe(true);
    expect(await page.locator('#cmd-revert').isDisabled()).toBe(false);
    await screenshot(page, 'rollout-completed');

    // Revert asks once more before it sends anything.
    await page.locator('#cmd-revert').click();
    await page.locator('#confirm-no').click();
    expect(await page.locator('#confirm').isHidden()).toBe(true);
    expect((await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${ROLLOUT}`, headers: auth(viewer) })).json()).toMatchObject({ state: 'completed' });
    await page.locator('#cmd-revert').click();
    await page.locator('#confirm-yes').click();
    await waitForText(page, '#rollout-state', 'reverted');
    expect((await t.server.http.inject({ method: 'GET', url: `/v1/rollouts/${ROLLOUT}`, headers: auth(viewer) })).json()).toMatchObject({ state: 'reverted' });
  });

  it('shows a viewer the rollout buttons disabled, and the server refuses the command anyway', async () => {
    const page = await open(viewer);
    await page.goto(`${t.http}/console/#/rollouts/paris-hostile`);
    await waitForText(page, '#rollout-state', 'running');
    for (const name of ['pause', 'resume', 'approve', 'cancel', 'revert']) {
      expect(await page.locator(`#cmd-${name}`).isDisabled()).toBe(true);
      expect(await page.locator(`#cmd-${name}`).getAttribute('title')).toBe('Needs the operator role (you are viewer)');
    }
    expect(await page.locator('#role-note').textContent()).toContain('viewer');
    // A direct call with the viewer's token, from the page itself, is refused by the server.
    const refused = await page.evaluate(async (token) => {
      const res = await fetch('/v1/rollouts/paris-hostile/pause', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, body: (await res.json()) as { code: string } };
    }, viewer);
    expect(refused).toMatchObject({ status: 403, body: { code: 'FLT_FORBIDDEN' } });
    expect((await t.server.http.inject({ method: 'GET', url: '/v1/rollouts/paris-hostile', headers: auth(viewer) })).json()).toMatchObject({ state: 'running' });
    await screenshot(page, 'rollout-viewer');
  });
});
