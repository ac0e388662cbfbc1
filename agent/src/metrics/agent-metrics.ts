import { Counter, Gauge, Registry } from 'prom-client';

/** The agent's Prometheus metrics, on a registry of its own (never prom-client's global one). */
export class AgentMetrics {
  readonly registry = new Registry();
  /** Read at scrape time; the agent points it at its outbox. */
  outboxDepth: () => { entries: number; bytes: number } = () => ({ entries: 0, bytes: 0 });
  readonly mqttConnects = new Counter({ name: 'flotilla_agent_mqtt_connects_total', help: 'MQTT sessions established', registers: [this.registry] });
  readonly mqttConnected = new Gauge({ name: 'flotilla_agent_mqtt_connected', help: '1 while the MQTT session is up', registers: [this.registry] });
  readonly messagesRejected = new Counter({
    name: 'flotilla_agent_messages_rejected_total',
    help: 'Incoming MQTT messages refused, by channel and error code',
    labelNames: ['channel', 'code'] as const,
    registers: [this.registry],
  });
  readonly heartbeats = new Counter({ name: 'flotilla_agent_heartbeats_total', help: 'Heartbeats published', registers: [this.registry] });
  readonly appliedGeneration = new Gauge({ name: 'flotilla_agent_applied_generation', help: 'Desired state generation last applied', registers: [this.registry] });
  readonly outboxDropped = new Counter({ name: 'flotilla_agent_outbox_dropped_total', help: 'Outbox entries dropped to stay within bounds', registers: [this.registry] });
  readonly outboxDroppedBytes = new Counter({ name: 'flotilla_agent_outbox_dropped_bytes_total', help: 'Bytes of outbox entries dropped to stay within bounds', registers: [this.registry] });
  readonly outboxEntries: Gauge = new Gauge({
    name: 'flotilla_agent_outbox_entries',
    help: 'Events waiting for a server acknowledgement',
    registers: [this.registry],
    collect: (): void => this.outboxEntries.set(this.outboxDepth().entries),
  });
  readonly outboxBytes: Gauge = new Gauge({
    name: 'flotilla_agent_outbox_bytes',
    help: 'Encoded bytes waiting for a server acknowledgement',
    registers: [this.registry],
    collect: (): void => this.outboxBytes.set(this.outboxDepth().bytes),
  });
  readonly enrollmentState = new Gauge({
    name: 'flotilla_agent_enrollment_state',
    help: '1 for the current enrollment state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
}
