import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startExternal } from './harness.ts';
import { ADMIN_PASSWORD, ADMIN_USER, mosquittoPaths, type Mosquitto } from './mosquitto.ts';

/** Asks mosquitto itself (through mosquitto_ctrl, not the code under test) what dynsec holds. */
function dynsec(m: Mosquitto, ...args: string[]): string {
  return execFileSync(mosquittoPaths().ctrl, ['-h', '127.0.0.1', '-p', String(m.port), '-u', ADMIN_USER, '-P', ADMIN_PASSWORD, 'dynsec', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const names = (listing: string) => listing.split('\n').map((l) => l.trim()).filter(Boolean);

describe('mosquitto dynamic security: batched provisioning and reconcile', () => {
  it('provisions many devices granted at once, and each connects with its own credential and no other', async () => {
    const h = await startExternal([]);
    const ids = Array.from({ length: 40 }, (_, i) => `batch-${i}`);
    for (const id of ids) h.active.add(id);
    await Promise.all(ids.map((id) => h.broker.provisioner!.grant(id, `secret-of-${id}-0123456789`)));
    expect(names(dynsec(h.mosquitto, 'listClients')).filter((n) => n.startsWith('batch-'))).toHaveLength(40);
    const first = await h.attempt({ clientId: 'batch-0', username: 'batch-0', password: 'secret-of-batch-0-0123456789' });
    expect(first.code).toBe(0);
    const last = await h.attempt({ clientId: 'batch-39', username: 'batch-39', password: 'secret-of-batch-39-0123456789' });
    expect(last.code).toBe(0);
    const crossed = await h.attempt({ clientId: 'batch-1', username: 'batch-1', password: 'secret-of-batch-2-0123456789' });
    expect(crossed.code).toBe(5);
  });

  it('sweeps away the accounts and leftover roles of devices no longer active, and keeps the active ones', async () => {
    const h = await startExternal(['dev-a', 'dev-b', 'dev-ab']);
    // dev-b is revoked while the server could not reach the broker; dev-ab's grant stopped halfway (role, no account).
    dynsec(h.mosquitto, 'deleteClient', 'dev-ab');
    h.active.delete('dev-b');
    h.active.delete('dev-ab');
    await h.broker.reconcileNow();
    const clients = names(dynsec(h.mosquitto, 'listClients'));
    expect(clients).toContain('dev-a');
    expect(clients).not.toContain('dev-b');
    const roles = names(dynsec(h.mosquitto, 'listRoles'));
    expect(roles).toContain('flotilla-device-dev-a');
    expect(roles).not.toContain('flotilla-device-dev-b');
    expect(roles).not.toContain('flotilla-device-dev-ab');
    // Accounts the server did not make are never touched.
    expect(clients).toContain(ADMIN_USER);
    expect((await h.attempt({ clientId: 'dev-b', username: 'dev-b', password: 'secret-b-0123456789' })).code).toBe(5);
    expect((await h.device('dev-a')).connected).toBe(true);
  });
});
