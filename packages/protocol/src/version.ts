/** Wire protocol version carried in every MQTT envelope. Bumped only on a breaking change. */
export const PROTOCOL_VERSION = 1 as const;

/** Root of every Flotilla MQTT topic; the version segment lets v1 and v2 fleets share a broker. */
export const TOPIC_ROOT = 'flt/v1' as const;

/** Largest MQTT payload either side accepts, in bytes. Hard examples with larger inputs travel without their tensors (docs/escalation.md). */
export const MAX_MQTT_PAYLOAD_BYTES = 256 * 1024;

/** Deepest JSON nesting accepted in a payload (guards the parser-side stack and the validators). */
export const MAX_JSON_DEPTH = 32;
