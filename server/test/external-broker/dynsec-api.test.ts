import { describe, expect, it } from 'vitest';
import { DynsecApi, type ControlTransport } from '../../src/broker/external/dynsec-api.ts';

describe('dynamic-security client', () => {
  it('fails a command that times out while its publish is still pending, without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // The broker takes its time to acknowledge the control message: longer than the command timeout.
      const transport: ControlTransport = { publish: () => new Promise<void>((r) => setTimeout(r, 150)) };
      const api = new DynsecApi(transport, { timeoutMs: 20 });
      await expect(api.run([{ command: 'createRole', rolename: 'device-x' }])).rejects.toMatchObject({ code: 'FLT_BROKER_PROVISION_FAILED' });
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      api.close();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
