import { Type, type Static, type TSchema } from 'typebox';
import { PROTOCOL_VERSION } from '../version.ts';
import { MessageId, Timestamp, strict } from './common.ts';
import { Inventory } from './inventory.ts';
import { DesiredState, ReportedState } from './state.ts';

/** Every MQTT payload is one envelope: protocol version, type, unique id, sender time, body. */
function envelope<T extends string, B extends TSchema>(type: T, body: B) {
  return Type.Object(
    {
      v: Type.Literal(PROTOCOL_VERSION),
      type: Type.Literal(type),
      id: MessageId,
      ts: Timestamp,
      body,
    },
    strict,
  );
}

export const StatusMessage = envelope(
  'status',
  Type.Object({ state: Type.Union([Type.Literal('online'), Type.Literal('offline')]) }, strict),
);

export const InventoryMessage = envelope('inventory', Inventory);

export const HeartbeatMessage = envelope(
  'heartbeat',
  Type.Object(
    {
      uptimeSec: Type.Number({ minimum: 0 }),
      loadAvg1: Type.Optional(Type.Number({ minimum: 0 })),
      memFreeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
      diskFreeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
      outboxDepth: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    strict,
  ),
);

export const ReportedMessage = envelope('reported', ReportedState);

/** A durable device event (sent through the outbox). The envelope id is its deduplication key. */
export const EventMessage = envelope(
  'event',
  Type.Object(
    {
      kind: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_.]*$' }),
      /** Monotonic per device: lets the server see gaps and order. */
      seq: Type.Integer({ minimum: 0 }),
      data: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 64 }),
    },
    strict,
  ),
);

export const DesiredMessage = envelope('desired', DesiredState);

/** Application-level acknowledgement: the server has committed these event ids. */
export const AckMessage = envelope(
  'ack',
  Type.Object({ ids: Type.Array(MessageId, { minItems: 1, maxItems: 1000 }) }, strict),
);

export const CommandMessage = envelope(
  'cmd',
  Type.Object(
    {
      command: Type.Union([Type.Literal('reenroll'), Type.Literal('report')]),
    },
    strict,
  ),
);

export type StatusMessage = Static<typeof StatusMessage>;
export type InventoryMessage = Static<typeof InventoryMessage>;
export type HeartbeatMessage = Static<typeof HeartbeatMessage>;
export type ReportedMessage = Static<typeof ReportedMessage>;
export type EventMessage = Static<typeof EventMessage>;
export type DesiredMessage = Static<typeof DesiredMessage>;
export type AckMessage = Static<typeof AckMessage>;
export type CommandMessage = Static<typeof CommandMessage>;

/** Which message type travels on which channel: one type per channel. */
export const CHANNEL_MESSAGES = {
  status: { type: 'status', schema: StatusMessage },
  inventory: { type: 'inventory', schema: InventoryMessage },
  heartbeat: { type: 'heartbeat', schema: HeartbeatMessage },
  reported: { type: 'reported', schema: ReportedMessage },
  events: { type: 'event', schema: EventMessage },
  desired: { type: 'desired', schema: DesiredMessage },
  ack: { type: 'ack', schema: AckMessage },
  cmd: { type: 'cmd', schema: CommandMessage },
} as const;

export interface ChannelMessageMap {
  status: StatusMessage;
  inventory: InventoryMessage;
  heartbeat: HeartbeatMessage;
  reported: ReportedMessage;
  events: EventMessage;
  desired: DesiredMessage;
  ack: AckMessage;
  cmd: CommandMessage;
}
