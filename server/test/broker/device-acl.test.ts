/**
 * The dynsec ACLs Flotilla provisions on an external mosquitto, checked as data: each rule a device
 * or the server account gets, and what an attacker-controlled device id would have to defeat.
 * server/test/external-broker/policy-attacks.test.ts runs the same rules against a live mosquitto.
 */
import { DOWN_CHANNELS, UP_CHANNELS } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { FLOTILLA_MARK, SERVER_ROLE, anyDeviceTopic, deviceAcls, deviceIdOfRole, deviceRoleName, serverAcls } from '../../src/broker/external/device-acl.ts';

describe('external broker device ACLs', () => {
  it('let a device publish on exactly its own up channels and nowhere else', () => {
    const sends = deviceAcls('dev-a').filter((a) => a.acltype === 'publishClientSend');
    expect(sends.filter((a) => a.allow)).toEqual(UP_CHANNELS.map((c) => ({ acltype: 'publishClientSend', topic: `flt/v1/d/dev-a/${c}`, allow: true, priority: 1 })));
    expect(sends.filter((a) => !a.allow)).toEqual([{ acltype: 'publishClientSend', topic: '#', allow: false, priority: 0 }]);
  });

  it('let a device subscribe and receive only under its own prefix, and deny receiving anything else at a lower priority', () => {
    const acls = deviceAcls('dev-a');
    expect(acls.filter((a) => a.acltype === 'subscribePattern')).toEqual([{ acltype: 'subscribePattern', topic: 'flt/v1/d/dev-a/#', allow: true, priority: 1 }]);
    expect(acls.filter((a) => a.acltype === 'publishClientReceive')).toEqual([
      { acltype: 'publishClientReceive', topic: 'flt/v1/d/dev-a/#', allow: true, priority: 1 },
      { acltype: 'publishClientReceive', topic: '#', allow: false, priority: 0 },
    ]);
  });

  it('never grant a device a down channel, a wildcard above its own id or another device topic', () => {
    for (const acl of deviceAcls('dev-a').filter((a) => a.allow)) {
      expect(acl.topic.startsWith('flt/v1/d/dev-a/')).toBe(true);
      for (const c of DOWN_CHANNELS) expect(acl.acltype === 'publishClientSend' && acl.topic.endsWith(`/${c}`)).toBe(false);
    }
  });

  it.each(['dev+a', 'dev/a', '#', '$SYS'])('refuse to write ACLs for the device id %j', (id) => {
    expect(() => deviceAcls(id)).toThrow(TypeError);
  });

  it('give the server account publish rights on every channel of every device and nothing more', () => {
    const acls = serverAcls();
    expect(acls.map((a) => a.topic).sort()).toEqual([...DOWN_CHANNELS, ...UP_CHANNELS].map((c) => `flt/v1/d/+/${c}`).sort());
    expect(acls.every((a) => a.acltype === 'publishClientSend' && a.allow && a.priority === 1)).toBe(true);
  });

  it('name one role per device and mark what Flotilla owns', () => {
    expect(deviceRoleName('dev-a')).toBe('flotilla-device-dev-a');
    expect(anyDeviceTopic('desired')).toBe('flt/v1/d/+/desired');
    expect(SERVER_ROLE).toBe('flotilla-server');
    expect(FLOTILLA_MARK).toBe('flotilla device');
  });

  it('read the device back only from a role Flotilla named, never from a foreign or malformed one', () => {
    expect(deviceIdOfRole(deviceRoleName('dev-a'))).toBe('dev-a');
    expect(deviceIdOfRole('flotilla-server')).toBeNull();
    expect(deviceIdOfRole('admin-flotilla-device-dev-a')).toBeNull();
    expect(deviceIdOfRole('dev-a-flotilla-device-')).toBeNull();
    expect(deviceIdOfRole('flotilla-device-dev+a')).toBeNull();
    expect(deviceIdOfRole('flotilla-device-')).toBeNull();
  });
});

