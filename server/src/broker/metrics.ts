import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { UP_CHANNELS } from '@flotilla/protocol';
import type { ErrorCode, UpChannel } from '@flotilla/protocol';

export type ConnectResult = 'accepted' | 'refused' | 'throttled' | 'error';
/** Why the broker dropped a connection on its own: a connect flood, or a client that stopped reading. */
export type ShedReason = 'flood' | 'slow_consumer';

/** Broker metrics, registered on the injected registry (one FleetBroker per registry). */
export class BrokerMetrics {
  readonly connects: Counter<'result'>;
  readonly violations: Counter<'code'>;
  readonly messagesIn: Counter<'channel'>;
  readonly shed: Counter<'reason'>;

  constructor(registry: Registry, connectedCount: () => number) {
    const registers = [registry];
    new Gauge({
      name: 'flotilla_broker_connected_clients',
      help: 'Devices with a live, authenticated MQTT session',
      registers,
      // Read on scrape: no per-connection bookkeeping for the gauge.
      collect() {
        this.set(connectedCount());
      },
    });
    this.connects = new Counter({
      name: 'flotilla_broker_connects_total',
      help: 'MQTT CONNECT attempts by result',
      labelNames: ['result'],
      registers,
    });
    this.violations = new Counter({
      name: 'flotilla_broker_policy_violations_total',
      help: 'Refused MQTT operations by error code',
      labelNames: ['code'],
      registers,
    });
    this.messagesIn = new Counter({
      name: 'flotilla_broker_messages_in_total',
      help: 'Accepted device publishes by up channel',
      labelNames: ['channel'],
      registers,
    });
    this.shed = new Counter({
      name: 'flotilla_broker_connections_shed_total',
      help: 'Connections the broker closed on its own: flood (too many new or pending from one address), slow_consumer (outgoing buffer past the limit)',
      labelNames: ['reason'],
      registers,
    });
    for (const result of ['accepted', 'refused', 'throttled', 'error'] satisfies ConnectResult[]) this.connects.inc({ result }, 0);
    for (const reason of ['flood', 'slow_consumer'] satisfies ShedReason[]) this.shed.inc({ reason }, 0);
    for (const channel of UP_CHANNELS) this.messagesIn.inc({ channel }, 0);
  }

  connect(result: ConnectResult): void {
    this.connects.inc({ result });
  }

  shedConnection(reason: ShedReason): void {
    this.shed.inc({ reason });
  }

  violation(code: ErrorCode): void {
    this.violations.inc({ code });
  }

  messageIn(channel: UpChannel): void {
    this.messagesIn.inc({ channel });
  }
}
