/**
 * Mosquitto's dynamic-security control API: JSON commands published on `$CONTROL/dynamic-security/v1`,
 * answers on `.../v1/response`. Every admin connected to the broker sees every answer, so each
 * command carries its own correlation id and only answers this client asked for are taken.
 *
 * Commands from concurrent callers (many enrollments at once) are coalesced: the control topic
 * takes a `commands` array and answers with one `responses` array, so commands arriving within a
 * short window go out as one message of bounded size, and each caller gets its own commands'
 * answers back. At most a few messages are in flight; the rest wait in a bounded queue, and a
 * command's timeout starts when its message is sent, so a burst of enrollments queues on the
 * server instead of timing out inside the broker. A full queue is refused at once.
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

export interface DynsecBatching {
  /** How long the first queued command waits for others to join its message. */
  windowMs: number;
  /** Most commands in one control message (one caller's commands are never split below this). */
  maxCommands: number;
  /** Control messages sent and not fully answered at once. */
  maxInFlight: number;
  /** Commands waiting to be sent; past this, run() fails at once with FLT_BROKER_PROVISION_FAILED. */
  maxQueued: number;
}

export const DEFAULT_BATCHING: Readonly<DynsecBatching> = Object.freeze({ windowMs: 5, maxCommands: 100, maxInFlight: 2, maxQueued: 20_000 });

interface Pending {
  id: string;
  command: DynsecCommand;
  resolve(r: DynsecResponse): void;
  reject(err: Error): void;
  timer: unknown;
  /** the message this command went out in, once sent */
  message: SentMessage | null;
}

interface SentMessage {
  unanswered: number;
}

const realTimers: DynsecTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class DynsecApi {
  readonly #transport: ControlTransport;
  readonly #timeoutMs: number;
  readonly #timers: DynsecTimers;
  readonly #batching: DynsecBatching;
  /** every command not yet answered, queued or sent, by correlation id */
  readonly #waiting = new Map<string, Pending>();
  /** callers' command groups in arrival order, not sent yet */
  #queue: Pending[][] = [];
  #queued = 0;
  #inFlight = 0;
  #windowTimer: unknown = null;
  readonly #prefix = randomBytes(6).toString('hex');
  #seq = 0;
  #closed = false;
  #messagesSent = 0;

  constructor(transport: ControlTransport, opts: { timeoutMs: number; timers?: DynsecTimers; batching?: Partial<DynsecBatching> }) {
    this.#transport = transport;
    this.#timeoutMs = opts.timeoutMs;
    this.#timers = opts.timers ?? realTimers;
    this.#batching = { ...DEFAULT_BATCHING, ...opts.batching };
  }

  /** Control messages published so far (each may carry many callers' commands). */
  get messagesSent(): number {
    return this.#messagesSent;
  }

  /**
   * Queues the commands (mosquitto applies them in order, and this caller's commands stay
   * together and in order) and resolves with one answer per command, failed ones included:
   * callers decide which errors they can live with.
   */
  run(commands: readonly DynsecCommand[]): Promise<DynsecResponse[]> {
    if (this.#closed) return Promise.reject(new FlotillaError('FLT_BROKER_PROVISION_FAILED', 'the dynamic-security client is closed'));
    if (commands.length === 0) return Promise.resolve([]);
    if (this.#queued + commands.length > this.#batching.maxQueued) {
      return Promise.reject(new FlotillaError('FLT_BROKER_PROVISION_FAILED', `${this.#queued} broker commands already queued; try again later`));
    }
    const group: Pending[] = [];
    const answers = Promise.all(
      commands.map(
        (command) =>
          new Promise<DynsecResponse>((resolve, reject) => {
            const id = `${this.#prefix}-${++this.#seq}`;
            const pending: Pending = { id, command, resolve, reject, timer: null, message: null };
            this.#waiting.set(id, pending);
            group.push(pending);
          }),
      ),
    );
    this.#queue.push(group);
    this.#queued += group.length;
    this.#schedule();
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
      if (typeof correlationData !== 'string' || this.#waiting.get(correlationData)?.message == null) continue;
      this.#settle(correlationData, {
        command: typeof command === 'string' ? command : 'unknown',
        ...(typeof error === 'string' ? { error } : {}),
        ...(data === undefined ? {} : { data }),
      });
    }
  }

  /** Fails every command queued or waiting; later calls to run() fail at once. Safe to call twice. */
  close(): void {
    this.#closed = true;
    if (this.#windowTimer !== null) this.#timers.clearTimeout(this.#windowTimer);
    this.#windowTimer = null;
    this.#queue = [];
    this.#queued = 0;
    for (const id of [...this.#waiting.keys()]) this.#settle(id, new FlotillaError('FLT_BROKER_PROVISION_FAILED', 'the dynamic-security client closed'));
  }

  /** Sends at once when a full message is waiting, else after the window, so that followers can join. */
  #schedule(): void {
    if (this.#inFlight >= this.#batching.maxInFlight || this.#queued === 0) return;
    if (this.#queued >= this.#batching.maxCommands || this.#batching.windowMs <= 0) {
      this.#flush();
      return;
    }
    this.#windowTimer ??= this.#timers.setTimeout(() => {
      this.#windowTimer = null;
      this.#flush();
    }, this.#batching.windowMs);
  }

  #flush(): void {
    if (this.#windowTimer !== null) this.#timers.clearTimeout(this.#windowTimer);
    this.#windowTimer = null;
    while (!this.#closed && this.#inFlight < this.#batching.maxInFlight && this.#queued > 0) this.#send(this.#takeBatch());
  }

  /** Whole groups up to maxCommands; a group larger than that goes out alone. */
  #takeBatch(): Pending[] {
    const batch: Pending[] = [];
    while (this.#queue.length > 0) {
      const group = this.#queue[0]!;
      if (batch.length > 0 && batch.length + group.length > this.#batching.maxCommands) break;
      this.#queue.shift();
      batch.push(...group);
    }
    this.#queued -= batch.length;
    return batch;
  }

  #send(batch: Pending[]): void {
    const message: SentMessage = { unanswered: batch.length };
    this.#inFlight++;
    this.#messagesSent++;
    for (const p of batch) {
      p.message = message;
      p.timer = this.#timers.setTimeout(
        () => this.#settle(p.id, new FlotillaError('FLT_BROKER_PROVISION_FAILED', `no answer to ${p.command.command} within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    }
    const body = { commands: batch.map((p) => ({ ...p.command, correlationData: p.id })) };
    this.#transport.publish(DYNSEC_TOPIC, Buffer.from(JSON.stringify(body))).catch((err: unknown) => {
      for (const p of batch) this.#settle(p.id, new FlotillaError('FLT_BROKER_PROVISION_FAILED', `control message not sent: ${(err as Error).message}`));
    });
  }

  #settle(id: string, outcome: DynsecResponse | Error): void {
    const pending = this.#waiting.get(id);
    if (!pending) return;
    this.#waiting.delete(id);
    if (pending.timer !== null) this.#timers.clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
    const message = pending.message;
    if (message && --message.unanswered === 0) {
      this.#inFlight--;
      this.#schedule();
    }
  }
}
