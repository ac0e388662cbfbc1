/**
 * Mosquitto's dynamic-security control API: JSON commands published on `$CONTROL/dynamic-security/v1`,
 * answers on `.../v1/response`. Every admin connected to the broker sees every answer, so each
 * command carries its own correlation id and only answers this client asked for are taken.
 */
import { randomBytes } from 'node:crypto';
import { FlotillaError } from '@flotilla/protocol';

export const DYNSEC_TOPIC = '$CONTROL/dynamic-security/v1';
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_TOPIC}/response`;

export interface DynsecCommand {
  command: string;
  [field: string]: unknown;
}

export interface DynsecResponse {
  command: string;
  /** present when the command failed (mosquitto's own wording, e.g. "Client already exists") */
  error?: string;
  data?: unknown;
}

/** The broker connection the API publishes through; its owner routes answers to handleResponse. */
export interface ControlTransport {
  publish(topic: string, payload: Buffer): Promise<void>;
}

export interface DynsecTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

interface Waiter {
  resolve(r: DynsecResponse): void;
  reject(err: Error): void;
  timer: unknown;
}

const realTimers: DynsecTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class DynsecApi {
  readonly #transport: ControlTransport;
  readonly #timeoutMs: number;
  readonly #timers: DynsecTimers;
  readonly #waiting = new Map<string, Waiter>();
  readonly #prefix = randomBytes(6).toString('hex');
  #seq = 0;
  #closed = false;

  constructor(transport: ControlTransport, opts: { timeoutMs: number; timers?: DynsecTimers }) {
    this.#transport = transport;
    this.#timeoutMs = opts.timeoutMs;
    this.#timers = opts.timers ?? realTimers;
  }

  /**
   * Sends the commands in one message (mosquitto applies them in order) and resolves with one
   * answer per command, failed ones included: callers decide which errors they can live with.
   */
  async run(commands: readonly DynsecCommand[]): Promise<DynsecResponse[]> {
    if (this.#closed) throw new FlotillaError('FLT_BROKER_PROVISION_FAILED', 'the dynamic-security client is closed');
    const ids = commands.map(() => `${this.#prefix}-${++this.#seq}`);
    // Gathered before the publish is awaited, so a close() meanwhile never leaves a rejection unhandled.
    const answers = Promise.all(ids.map((id, i) => this.#await(id, commands[i]!.command)));
    // A command can time out while the publish is still being awaited: without a handler attached
    // now, that rejection would count as unhandled and end the process.
    answers.catch(() => undefined);
    const body = { commands: commands.map((c, i) => ({ ...c, correlationData: ids[i] })) };
    try {
      await this.#transport.publish(DYNSEC_TOPIC, Buffer.from(JSON.stringify(body)));
    } catch (err) {
      for (const id of ids) this.#settle(id, new FlotillaError('FLT_BROKER_PROVISION_FAILED', `control message not sent: ${(err as Error).message}`));
    }
    return answers;
  }

  /** Runs the commands and throws unless every one succeeded or failed with an error listed as harmless. */
  async require(commands: readonly DynsecCommand[], harmless: readonly RegExp[] = []): Promise<DynsecResponse[]> {
    const answers = await this.run(commands);
    const failed = answers.filter((a) => a.error !== undefined && !harmless.some((re) => re.test(a.error!)));
    if (failed.length > 0) {
      throw new FlotillaError('FLT_BROKER_PROVISION_FAILED', failed.map((a) => `${a.command}: ${a.error}`).join('; '), {
        broker: failed.map((a) => ({ command: a.command, error: a.error })),
      });
    }
    return answers;
  }

  /** Feeds one message from the response topic. Malformed or foreign answers are ignored. */
  handleResponse(payload: Buffer): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const responses = (parsed as { responses?: unknown }).responses;
    if (!Array.isArray(responses)) return;
    for (const r of responses as unknown[]) {
      if (!r || typeof r !== 'object') continue;
      const { correlationData, command, error, data } = r as Record<string, unknown>;
      if (typeof correlationData !== 'string' || !this.#waiting.has(correlationData)) continue;
      this.#settle(correlationData, {
        command: typeof command === 'string' ? command : 'unknown',
        ...(typeof error === 'string' ? { error } : {}),
        ...(data === undefined ? {} : { data }),
      });
    }
  }

  /** Fails every command still waiting; later calls to run() fail at once. Safe to call twice. */
  close(): void {
    this.#closed = true;
    for (const id of [...this.#waiting.keys()]) this.#settle(id, new FlotillaError('FLT_BROKER_PROVISION_FAILED', 'the dynamic-security client closed'));
  }

  #await(id: string, command: string): Promise<DynsecResponse> {
    return new Promise((resolve, reject) => {
      const timer = this.#timers.setTimeout(
        () => this.#settle(id, new FlotillaError('FLT_BROKER_PROVISION_FAILED', `no answer to ${command} within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      this.#waiting.set(id, { resolve, reject, timer });
    });
  }

  #settle(id: string, outcome: DynsecResponse | Error): void {
    const waiter = this.#waiting.get(id);
    if (!waiter) return;
    this.#waiting.delete(id);
    this.#timers.clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }
}
