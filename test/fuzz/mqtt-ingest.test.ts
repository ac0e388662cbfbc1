import { describe, expect, it } from 'vitest';
import { expectTargetClean } from './fuzz-ci.ts';
import { fuzzMqttIngest } from './targets/mqtt-ingest.ts';

describe('fuzz: device messages over MQTT into a real server', () => {
  it('handles every payload within the limit exactly once without dropping the device, closes the connection on oversize ones, and acknowledges valid events', async () => {
    const report = await expectTargetClean(fuzzMqttIngest, 150);
    expect(report.outcomes['oversize:connection-closed']).toBeGreaterThan(0);
    expect(report.outcomes['events:accepted']).toBeGreaterThan(0);
  });
});
