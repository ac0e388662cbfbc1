import mqtt, { type MqttClient } from 'mqtt';
import { decodeMessage, deviceTopic, encodeMessage, type DesiredState, type Inventory } from '@flotilla/protocol';

type RunState = 'pending' | 'downloading' | 'verified' | 'installed' | 'activated' | 'healthy' | 'failed';
/** `target` is the version being installed while another one still serves, as the agent reports it. */
export type ReportedModels = Record<string, { version: string | null; state: RunState; error?: string; target?: string }>;

/**
 * A device the test moves by hand over the real MQTT channel: it reports exactly what the test
 * says, when it says, so a browser test can watch each step (downloading, verified, activated,
 * healthy) reach the console. No agent code runs.
 */
export class ScriptedDevice {
  readonly id: string;
  readonly #client: MqttClient;
  #desired: DesiredState | null = null;
  #waiters: Array<() => void> = [];
  #acked = new Set<string>();
  #seq = 0;
  #closed = false;

  private constructor(id: string, client: MqttClient) {
    this.id = id;
    this.#client = client;
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/desired')) {
        const decoded = decodeMessage('desired', payload);
        if (decoded.ok && decoded.message.type === 'desired') this.#desired = decoded.message.body;
      } else if (topic.endsWith('/ack')) {
        const decoded = decodeMessage('ack', payload);
        if (decoded.ok && decoded.message.type === 'ack') for (const id of decoded.message.body.ids) this.#acked.add(id);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async connect(mqttUrl: string, id: string, credential: string): Promise<ScriptedDevice> {
    const client = mqtt.connect(mqttUrl, { clientId: id, username: id, password: credential, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const device = new ScriptedDevice(id, client);
    await client.subscribeAsync([deviceTopic(id, 'desired'), deviceTopic(id, 'ack')], { qos: 1 });
    return device;
  }

  get desired(): DesiredState | null {
    return this.#desired;
  }

  /** Resolves once a desired state satisfying `ok` has arrived. */
  async waitDesired(ok: (d: DesiredState) => boolean, timeoutMs = 20_000): Promise<DesiredState> {
    const end = Date.now() + timeoutMs;
    while (!(this.#desired && ok(this.#desired))) {
      if (Date.now() > end) throw new Error(`${this.id}: no matching desired state within ${timeoutMs} ms (last: ${JSON.stringify(this.#desired)})`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return this.#desired!;
  }

  async inventory(inv: Inventory): Promise<void> {
    await this.#client.publishAsync(deviceTopic(this.id, 'inventory'), encodeMessage('inventory', inv).payload, { qos: 1 });
  }

  /** Reports the models, as applied at the last desired generation received (0 before any). */
  async report(models: ReportedModels): Promise<void> {
    const appliedGeneration = this.#desired?.generation ?? 0;
    await this.#client.publishAsync(deviceTopic(this.id, 'reported'), encodeMessage('reported', { appliedGeneration, models }).payload, { qos: 1 });
  }

  /** Sends a durable event and resolves once the server acknowledged it (it is committed then). */
  async event(kind: string, data: Record<string, unknown>, timeoutMs = 10_000): Promise<void> {
    const { message, payload } = encodeMessage('events', { kind, seq: this.#seq++, data });
    await this.#client.publishAsync(deviceTopic(this.id, 'events'), payload, { qos: 1 });
    const end = Date.now() + timeoutMs;
    while (!this.#acked.has(message.id)) {
      if (Date.now() > end) throw new Error(`${this.id}: event ${kind} not acknowledged within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** Disconnects (the server then shows the device offline). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.endAsync(true);
  }
}

/** An inventory such as a Jetson Orin reports, with a CPU model string the test may replace. */
export function jetsonInventory(cpuModel = 'ARMv8 Processor rev 1 (v8l)'): Inventory {
  return {
    arch: 'arm64',
    os: { platform: 'linux', release: '5.15.136-tegra', distro: 'Ubuntu 22.04.4 LTS' },
    cpu: { model: cpuModel, cores: 8 },
    memoryBytes: 16 * 1024 ** 3,
    disk: { path: '/var/lib/flotilla', totalBytes: 64 * 1024 ** 3, freeBytes: 41 * 1024 ** 3 },
    gpu: { name: 'Orin (nvgpu)', computeCapability: '8.7', memoryBytes: 16 * 1024 ** 3 },
    cudaVersion: '12.2',
    tensorrtVersion: '8.6.2',
    jetpackVersion: '6.0',
    executionProviders: ['tensorrt', 'cuda', 'cpu'],
    agentVersion: '0.1.0',
    onnxruntimeVersion: '1.23.0',
  };
}
