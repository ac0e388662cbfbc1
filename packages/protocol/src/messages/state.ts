import { Type, type Static } from 'typebox';
import { Generation, Name, Version, strict } from './common.ts';

/** What the server wants one model on the device to be. */
export const DesiredModel = Type.Object(
  {
    version: Version,
  },
  { additionalProperties: true },
);

/**
 * Desired state: written by the server, retained on the device's `desired` topic.
 * `generation` increases with every change; the agent reports which one it has applied.
 */
export const DesiredState = Type.Object(
  {
    generation: Generation,
    models: Type.Record(Name, DesiredModel, { maxProperties: 64, additionalProperties: false }),
    config: Type.Optional(
      Type.Object(
        {
          heartbeatSec: Type.Optional(Type.Integer({ minimum: 5, maximum: 3600 })),
        },
        strict,
      ),
    ),
  },
  strict,
);
export type DesiredState = Static<typeof DesiredState>;

export const ModelRunState = Type.Union([
  Type.Literal('pending'),
  Type.Literal('downloading'),
  Type.Literal('verified'),
  Type.Literal('installed'),
  Type.Literal('activated'),
  Type.Literal('healthy'),
  Type.Literal('failed'),
]);

export const ReportedModel = Type.Object(
  {
    /** The version actually serving traffic, or null when none is. */
    version: Type.Union([Version, Type.Null()]),
    state: ModelRunState,
    provider: Type.Optional(Type.String({ maxLength: 32 })),
    error: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: true },
);

export const ReportedState = Type.Object(
  {
    /** The desired generation this report reflects. */
    appliedGeneration: Generation,
    models: Type.Record(Name, ReportedModel, { maxProperties: 64, additionalProperties: false }),
  },
  strict,
);
export type ReportedState = Static<typeof ReportedState>;
