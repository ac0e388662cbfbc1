import { describe, expect, it } from 'vitest';
import { DynsecApi, type ControlTransport, type DynsecCommand } from '../../src/broker/external/dynsec-api.ts';

interface Sent {
  commands: Array<DynsecCommand & { correlationData: string }>;
}

/** A control topic that records every message and answers only when told, the way mosquitto answers: one responses array per message. */
function recordingBroker(): { transport: ControlTransport; sent: Sent[]; answer(api: DynsecApi, index: number, error?: (c: DynsecCommand) => string | undefined): void } {
  const sent: Sent[] = [];
  return {
    sent,
    transport: {
      publish: async (_topic, payload) => {
        sent.push(JSON.parse(payload.toString('utf8')) as Sent);
      },
    },
    answer(api, index, error = () => undefined) {
      const responses = sent[index]!.commands.map((c) => {
        const e = error(c);
        return { command: c.command, correlationData: c.correlationData, ...(e ? { error: e } : {}) };
      });
      api.handleResponse(Buffer.from(JSON.stringify({ responses })));
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

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

  it('coalesces commands from concurrent callers into one control message and gives each caller its own answers', async () => {
    const broker = recordingBroker();
    const api = new DynsecApi(broker.transport, { timeoutMs: 5_000, batching: { windowMs: 5 } });
    const callers = ['d1', 'd2', 'd3'].map((id) =>
      api.run([
        { command: 'createRole', rolename: `role-${id}` },
        { command: 'createClient', username: id },
      ]),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(broker.sent).toHaveLength(1);
    // Each caller's commands stay together and in order.
    expect(broker.sent[0]!.commands.map((c) => c.rolename ?? c.username)).toEqual(['role-d1', 'd1', 'role-d2', 'd2', 'role-d3', 'd3']);
    broker.answer(api, 0, (c) => (c.username === 'd2' ? 'Client already exists' : undefined));
    const [a1, a2, a3] = await Promise.all(callers);
    expect(a1).toEqual([{ command: 'createRole' }, { command: 'createClient' }]);
    expect(a2).toEqual([{ command: 'createRole' }, { command: 'createClient', error: 'Client already exists' }]);
    expect(a3).toEqual([{ command: 'createRole' }, { command: 'createClient' }]);
    expect(api.messagesSent).toBe(1);
    api.close();
  });

  it('bounds a message by its command count without splitting one caller’s commands', async () => {
    const broker = recordingBroker();
    const api = new DynsecApi(broker.transport, { timeoutMs: 5_000, batching: { windowMs: 5, maxCommands: 4, maxInFlight: 10 } });
    const callers = Array.from({ length: 5 }, (_, i) =>
      api.run([
        { command: 'createRole', rolename: `r${i}` },
        { command: 'createClient', username: `c${i}` },
      ]),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(broker.sent.map((m) => m.commands.length)).toEqual([4, 4, 2]);
    broker.sent.forEach((_, i) => broker.answer(api, i));
    expect((await Promise.all(callers)).flat()).toHaveLength(10);
    api.close();
  });

  it('keeps at most maxInFlight messages unanswered and sends the queued ones as answers arrive', async () => {
    const broker = recordingBroker();
    const api = new DynsecApi(broker.transport, { timeoutMs: 5_000, batching: { windowMs: 0, maxCommands: 1, maxInFlight: 1 } });
    const first = api.run([{ command: 'getClient', username: 'a' }]);
    const second = api.run([{ command: 'getClient', username: 'b' }]);
    await tick();
    expect(broker.sent).toHaveLength(1);
    broker.answer(api, 0);
    await first;
    await tick();
    expect(broker.sent).toHaveLength(2);
    expect(broker.sent[1]!.commands[0]!.username).toBe('b');
    broker.answer(api, 1);
    await second;
    api.close();
  });

  it('refuses at once with FLT_BROKER_PROVISION_FAILED when the queue is full, and fails what is queued on close', async () => {
    const broker = recordingBroker();
    const api = new DynsecApi(broker.transport, { timeoutMs: 5_000, batching: { windowMs: 0, maxCommands: 1, maxInFlight: 1, maxQueued: 2 } });
    const sent = api.run([{ command: 'getClient', username: 'a' }]);
    const queued = api.run([
      { command: 'getClient', username: 'b' },
      { command: 'getClient', username: 'c' },
    ]);
    await expect(api.run([{ command: 'getClient', username: 'd' }])).rejects.toMatchObject({ code: 'FLT_BROKER_PROVISION_FAILED' });
    api.close();
    api.close();
    await expect(sent).rejects.toMatchObject({ code: 'FLT_BROKER_PROVISION_FAILED' });
    await expect(queued).rejects.toMatchObject({ code: 'FLT_BROKER_PROVISION_FAILED' });
    expect(broker.sent).toHaveLength(1);
    await expect(api.run([{ command: 'getClient', username: 'e' }])).rejects.toMatchObject({ code: 'FLT_BROKER_PROVISION_FAILED' });
  });

  it('ignores answers to commands it did not send, and malformed answers', async () => {
    const broker = recordingBroker();
    const api = new DynsecApi(broker.transport, { timeoutMs: 5_000, batching: { windowMs: 0 } });
    const pending = api.run([{ command: 'getClient', username: 'a' }]);
    await tick();
    api.handleResponse(Buffer.from('not json'));
    api.handleResponse(Buffer.from(JSON.stringify({ responses: [{ command: 'getClient', correlationData: 'someone-else-1', error: 'x' }, null, 7] })));
    broker.answer(api, 0);
    await expect(pending).resolves.toEqual([{ command: 'getClient' }]);
    api.close();
  });
});
