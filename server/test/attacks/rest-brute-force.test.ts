import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ENROLL_TOKEN, auth, enrollAccepted, enrollBody, startServer, type TestServer } from '../helpers/server.ts';

const ELSEWHERE = '10.9.0.2';
let attackers = 10;
/** A fresh attacker address per test: the tests share one server. */
const nextAttacker = () => `10.9.1.${attackers++}`;
const SHA = 'a'.repeat(64);

function basic(deviceId: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${deviceId}:${secret}`).toString('base64')}` };
}

describe('REST brute force', () => {
  let t: TestServer;
  let clock = 1_700_000_000_000;
  beforeAll(async () => {
    t = await startServer({ guards: { authFailuresPerAddress: 5, authBlockSec: 30 } }, { now: () => clock });
  });
  afterAll(() => t.close());
  const get = (url: string, headers: Record<string, string>, remoteAddress: string) => t.server.http.inject({ method: 'GET', url, headers, remoteAddress });

  it('answers 429 with Retry-After to an address guessing admin tokens, even once it guesses right', async () => {
    const ATTACKER = nextAttacker();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await get('/v1/devices', auth(`flta_guess-${i}-0123456789abcdefghij`), ATTACKER)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const res = await get('/v1/devices', auth(ADMIN_TOKEN), ATTACKER);
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.json()).toMatchObject({ code: 'FLT_AUTH_THROTTLED', details: { retryAfterSec: 30 } });
    const metrics = await t.server.metrics.registry.getSingleMetricAsString('flotilla_auth_throttled_total');
    expect(metrics).toMatch(/flotilla_auth_throttled_total 1$/m);
  });

  it('keeps serving the real admin from another address during the attack', async () => {
    const ATTACKER = nextAttacker();
    for (let i = 0; i < 20; i++) await get('/v1/devices', auth(`flta_guess-${i}-0123456789abcdefghij`), ATTACKER);
    expect((await get('/v1/devices', auth(ADMIN_TOKEN), ELSEWHERE)).statusCode).toBe(200);
  });

  it('lets the address in again once the block has passed', async () => {
    const ATTACKER = nextAttacker();
    for (let i = 0; i < 5; i++) await get('/v1/devices', auth(`flta_guess-${i}-0123456789abcdefghij`), ATTACKER);
    expect((await get('/v1/devices', auth(ADMIN_TOKEN), ATTACKER)).statusCode).toBe(429);
    clock += 30_000;
    expect((await get('/v1/devices', auth(ADMIN_TOKEN), ATTACKER)).statusCode).toBe(200);
  });

  it('throttles guesses at a device credential on the download endpoints, not the device itself', async () => {
    const ATTACKER = nextAttacker();
    const credential = await enrollAccepted(t, 'dev-1');
    for (let i = 0; i < 5; i++) expect((await get(`/v1/artifacts/${SHA}`, basic('dev-1', `guess-${i}`), ATTACKER)).statusCode).toBe(401);
    expect((await get(`/v1/artifacts/${SHA}`, basic('dev-1', credential), ATTACKER)).statusCode).toBe(429);
    // The device itself, elsewhere, authenticates (and is refused only because it is not entitled).
    const own = await get(`/v1/artifacts/${SHA}`, basic('dev-1', credential), ELSEWHERE);
    expect(own.json()).toMatchObject({ code: 'FLT_ARTIFACT_NOT_ENTITLED' });
  });

  it('throttles enrollment-token guesses', async () => {
    const ATTACKER = nextAttacker();
    const enroll = (token: string) =>
      t.server.http.inject({ method: 'POST', url: '/v1/enroll', payload: enrollBody('dev-2', { enrollmentToken: token }), remoteAddress: ATTACKER });
    for (let i = 0; i < 5; i++) expect((await enroll(`flte_guess-${i}-0123456789abcdefgh`)).statusCode).toBe(401);
    const res = await enroll(ENROLL_TOKEN);
    expect(res.statusCode).toBe(429);
    expect(res.json()).toMatchObject({ code: 'FLT_AUTH_THROTTLED' });
  });

  it('leaves requests without a credential alone', async () => {
    const ATTACKER = nextAttacker();
    for (let i = 0; i < 20; i++) expect((await get('/v1/devices', {}, ATTACKER)).statusCode).toBe(401);
    expect((await get('/v1/devices', auth(ADMIN_TOKEN), ATTACKER)).statusCode).toBe(200);
  });
});
