/**
 * Bulk-writes device accounts into a mosquitto dynamic-security file before mosquitto starts: the
 * same account, bound client id, role and ACLs the server's provisioner creates for an enrolled
 * device (server/src/broker/external/dynsec-provisioner.ts), with the password hashed the way
 * dynsec stores it (PBKDF2-HMAC-SHA512, 12-byte salt, 101 iterations, 64-byte key, base64).
 *
 * Mosquitto 2.0 rewrites its whole dynsec file after every control command, so provisioning one
 * account at a time costs time proportional to the accounts already there and 10,000 accounts take
 * over an hour of broker CPU. The broker bench uses this to stand up a 10,000-device fleet for the
 * connect, ingest, fan-out and memory measurements; enrollment through the provisioner is still
 * measured, for the devices enrolled after the seeded ones.
 */
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { FLOTILLA_MARK, deviceAcls, deviceRoleName } from '../../src/broker/external/device-acl.ts';
import type { EnrolledDevice } from './fleet-sim.ts';

const ITERATIONS = 101;

interface DynsecFile {
  clients: unknown[];
  roles: unknown[];
}

export function seedDynsecAccounts(file: string, devices: readonly EnrolledDevice[]): void {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as DynsecFile;
  for (const d of devices) {
    const salt = randomBytes(12);
    const role = deviceRoleName(d.id);
    doc.clients.push({
      username: d.id,
      clientid: d.id,
      textName: FLOTILLA_MARK,
      roles: [{ rolename: role }],
      password: pbkdf2Sync(d.credential, salt, ITERATIONS, 64, 'sha512').toString('base64'),
      salt: salt.toString('base64'),
      iterations: ITERATIONS,
    });
    doc.roles.push({
      rolename: role,
      textName: FLOTILLA_MARK,
      acls: deviceAcls(d.id).map(({ acltype, topic, priority, allow }) => ({ acltype, topic, priority, allow })),
    });
  }
  writeFileSync(file, JSON.stringify(doc));
}
