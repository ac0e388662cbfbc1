import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DOWN_CHANNELS, UP_CHANNELS, deviceTopic, filterWithinDevice, fleetFilter, isValidDeviceId, parseDeviceTopic } from '../src/index.ts';

describe('topic scheme', () => {
  it('puts every channel of a device under its own versioned prefix and parses it back', () => {
    for (const channel of [...UP_CHANNELS, ...DOWN_CHANNELS]) {
      const topic = deviceTopic('jetson-7', channel);
      expect(topic).toBe(`flt/v1/d/jetson-7/${channel}`);
      expect(parseDeviceTopic(topic)).toMatchObject({ deviceId: 'jetson-7', channel });
    }
    expect(fleetFilter('events')).toBe('flt/v1/d/+/events');
  });

  it('refuses device ids with wildcards, separators or a leading $', () => {
    for (const bad of ['a/b', 'a+', '#', '$SYS', '', ' x', 'x'.repeat(65), '.hidden']) {
      expect(isValidDeviceId(bad), bad).toBe(false);
      expect(() => deviceTopic(bad, 'status')).toThrow();
    }
  });

  it('parses nothing outside the scheme', () => {
    for (const t of ['flt/v2/d/a/status', 'flt/v1/x/a/status', 'flt/v1/d/a/unknown', 'flt/v1/d/a/status/extra', '$SYS/broker', 'flt/v1/d/+/status']) {
      expect(parseDeviceTopic(t), t).toBeNull();
    }
  });

  it('admits only filters that stay inside the device prefix', () => {
    expect(filterWithinDevice('flt/v1/d/a/#', 'a')).toBe(true);
    expect(filterWithinDevice('flt/v1/d/a/+', 'a')).toBe(true);
    expect(filterWithinDevice('flt/v1/d/a/desired', 'a')).toBe(true);
    for (const f of ['#', '+/+/+/+/+', 'flt/v1/d/+/desired', 'flt/v1/d/#', 'flt/v1/d/b/desired', 'flt/v1/d/ab/#', '$SYS/#', 'flt/v1/d/a#', 'flt/v1/d/a/de#']) {
      expect(filterWithinDevice(f, 'a'), f).toBe(false);
    }
  });

  it('never lets a generated filter for one device match another device (property)', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,10}$/);
    const level = fc.oneof(fc.constant('+'), fc.constant('#'), fc.stringMatching(/^[a-z#+]{0,6}$/));
    fc.assert(
      fc.property(id, id, fc.array(level, { maxLength: 6 }), (self, other, levels) => {
        fc.pre(self !== other);
        const filter = levels.join('/');
        if (!filterWithinDevice(filter, self)) return;
        // An admitted filter must start with the device's literal prefix.
        expect(filter === `flt/v1/d/${self}` || filter.startsWith(`flt/v1/d/${self}/`)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
