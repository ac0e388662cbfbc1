import mqtt, { type MqttClient } from 'mqtt';
import { onTestFinished } from 'vitest';
import { decodeMessage, deviceTopic, encodeMessage, fleetFilter, parseDeviceTopic, type ChannelMessageMap, type UpChannel } from '@flotilla/protocol';

export interface Seen {
  channel: UpChannel;
  retain: boolean;
  qos: number;
  message: ChannelMessageMap[UpChannel];
}

/**
 * The test's stand-in for the control server on the MQTT side: watches every device up channel,
 * decodes with the protocol package, and sends desired states and acks like the server would.
 */
export class ServerRole {
  readonly seen: Seen[] = [];
  #client: MqttClient;
  #url: string;
  #listeners = new Set<() => void>();

  private constructor(client: MqttClient, url: string) {
    this.#client = client;
    this.#url = url;
    client.on('message', (topic, payload, packet) => {
      const parsed = parseDeviceTopic(topic);
      if (!parsed || parsed.direction !== 'up') return;
      const channel = parsed.channel as UpChannel;
      const decoded = decodeMessage(channel, payload);
      if (!decoded.ok) throw new Error(`agent sent an invalid ${channel}: ${decoded.code} ${decoded.reason}`);
      this.seen.push({ channel, retain: packet.retain, qos: packet.qos, message: decoded.message });
      for (const l of this.#listeners) l();
    });
  }

  static async connect(url: string, clientId = 'test-server-role'): Promise<ServerRole> {
    const client = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 20, clean: true });
    await client.subscribeAsync((['status', 'inventory', 'heartbeat', 'reported', 'events'] as const).map((c) => fleetFilter(c)), { qos: 1 });
    const role = new ServerRole(client, url);
    onTestFinished(() => role.close());
    return role;
  }

  /** Resolves after the next reconnect and resubscription (after a broker restart). */
  async reconnected(): Promise<void> {
    await new Promise<void>((resolve) => this.#client.once('connect', () => resolve()));
    await this.#client.subscribeAsync((['status', 'inventory', 'heartbeat', 'reported', 'events'] as const).map((c) => fleetFilter(c)), { qos: 1 });
  }

  of<C extends UpChannel>(channel: C): ChannelMessageMap[C][] {
    return this.seen.filter((s) => s.channel === channel).map((s) => s.message as ChannelMessageMap[C]);
  }

  /** Resolves once `predicate` holds over what was seen so far. */
  waitFor<T>(predicate: () => T | undefined | false): Promise<T> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const v = predicate();
        if (v) {
          this.#listeners.delete(check);
          resolve(v);
          return true;
        }
        return false;
      };
      if (!check()) this.#listeners.add(check);
    });
  }

  async sendDesired(deviceId: string, body: ChannelMessageMap['desired']['body']): Promise<void> {
    await this.#client.publishAsync(deviceTopic(deviceId, 'desired'), encodeMessage('desired', body).payload, { qos: 1, retain: true });
  }

  async sendRaw(deviceId: string, channel: 'desired' | 'ack' | 'cmd', payload: string | Buffer): Promise<void> {
    await this.#client.publishAsync(deviceTopic(deviceId, channel), payload, { qos: 1 });
  }

  async ack(deviceId: string, ids: string[]): Promise<void> {
    await this.#client.publishAsync(deviceTopic(deviceId, 'ack'), encodeMessage('ack', { ids }).payload, { qos: 1 });
  }

  /** A fresh subscription, to read what the broker retained on a device topic. */
  async retained(deviceId: string, channel: UpChannel): Promise<{ retain: boolean; message: ChannelMessageMap[UpChannel] }> {
    const probe = await mqtt.connectAsync(this.#url, {
      clientId: `retained-probe-${Math.random().toString(36).slice(2)}`,
    });
    try {
      const got = new Promise<{ retain: boolean; message: ChannelMessageMap[UpChannel] }>((resolve, reject) => {
        probe.on('message', (_topic, payload, packet) => {
          const decoded = decodeMessage(channel, payload);
          if (decoded.ok) resolve({ retain: packet.retain, message: decoded.message });
          else reject(new Error(decoded.code));
        });
      });
      await probe.subscribeAsync(deviceTopic(deviceId, channel), { qos: 1 });
      return await got;
    } finally {
      await probe.endAsync(true);
    }
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true);
  }
}
