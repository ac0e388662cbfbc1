/**
 * Two changes to the mqtt-packet parser aedes creates for each connection.
 *
 * 1. Packet size limit. aedes builds its mqtt-packet parser without options, and mqtt-packet 9 has no maximum packet
 * size: a client announcing a 256 MB PUBLISH would be buffered in full before any hook sees it.
 * This guard refuses a packet as soon as its remaining-length field is read.
 *
 * It replaces `_parseLength` on each connection's parser instance (never the shared prototype, so
 * mqtt.js clients in the same process are unaffected). One guard function is shared by every
 * connection of a broker, so the per-connection cost is one property.
 */

/** The parts of mqtt-packet's parser (pinned through aedes) relied on here. */
interface ParserInternals {
  packet: { length: number; cmd?: string };
  settings: { protocolVersion?: number; bridgeMode?: boolean };
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

interface ClientWithParser {
  _parser?: ParserInternals;
}

export class PacketTooLargeError extends Error {
  readonly packetBytes: number;

  constructor(packetBytes: number, limit: number) {
    super(`MQTT packet of ${packetBytes} bytes exceeds the ${limit} byte limit`);
    this.name = 'PacketTooLargeError';
    this.packetBytes = packetBytes;
  }
}

export type PacketGuard = (client: unknown) => void;

/** Returns a function that installs the limit on one aedes client's parser. */
export function packetSizeGuard(maxPacketBytes: number): PacketGuard {
  function guardedParseLength(this: ParserInternals): boolean {
    const proto = Object.getPrototypeOf(this) as ParserInternals;
    const complete = proto._parseLength.call(this);
    if (complete && this.packet.length > maxPacketBytes) {
      this._emitError(new PacketTooLargeError(this.packet.length, maxPacketBytes));
      return false;
    }
    return complete;
  }
  return (client) => {
    const parser = (client as ClientWithParser)._parser;
    if (!parser || typeof Object.getPrototypeOf(parser)._parseLength !== 'function') {
      throw new Error('aedes client has no mqtt-packet parser to guard; check the aedes version');
    }
    parser._parseLength = guardedParseLength;
  };
}

/**
 * 2. The parser keeps the whole CONNECT packet as its `settings` for the life of the connection
 * (it only reads `protocolVersion` from it afterwards): client id, username, will and the password
 * bytes. Swapping it for a shared object saves memory per device and stops holding credentials.
 */
const SHARED_SETTINGS = new Map<number, { protocolVersion: number }>();

export function releaseConnectPacket(client: unknown): void {
  const parser = (client as ClientWithParser)._parser;
  const version = parser?.settings?.protocolVersion;
  // Bridge mode changes how later packets parse; no device uses it, so just leave such a one be.
  if (!parser || typeof version !== 'number' || parser.settings.bridgeMode) return;
  let shared = SHARED_SETTINGS.get(version);
  if (!shared) SHARED_SETTINGS.set(version, (shared = Object.freeze({ protocolVersion: version })));
  parser.settings = shared;
}
