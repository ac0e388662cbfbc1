import { describe, expect, it } from 'vitest';
import { expectTargetClean } from './fuzz-ci.ts';
import { fuzzMqttDecode } from './targets/mqtt-decode.ts';

describe('fuzz: MQTT payload codec', () => {
  it('never throws on any payload of any channel, refuses only with documented FLT_MSG_ codes and accepts only what it would encode', async () => {
    const report = await expectTargetClean(fuzzMqttDecode, 1000);
    // The generators reach every stage of the decoder, not just the JSON parser.
    for (const code of ['accepted', 'FLT_MSG_TOO_LARGE', 'FLT_MSG_MALFORMED_JSON', 'FLT_MSG_TOO_DEEP', 'FLT_MSG_BAD_VERSION', 'FLT_MSG_INVALID']) {
      expect(report.outcomes[code], code).toBeGreaterThan(0);
    }
  });
});
