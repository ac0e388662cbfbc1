import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

/** Opens the byte stream an MQTT session runs on. One connection per call. */
export type MqttStreamFactory = () => Duplex;

/**
 * TCP (mqtt://) and TLS (mqtts://) streams with TCP_NODELAY set before the first byte: without it,
 * Nagle's algorithm holds small MQTT packets back and a QoS 1 round trip takes tens of ms.
 */
export function tcpStreamFactory(url: string): MqttStreamFactory {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (parsed.protocol === 'mqtt:') {
    const port = parsed.port ? Number(parsed.port) : 1883;
    return () => net.createConnection({ host, port, noDelay: true });
  }
  if (parsed.protocol === 'mqtts:') {
    const port = parsed.port ? Number(parsed.port) : 8883;
    return () => {
      const socket = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host });
      socket.setNoDelay(true);
      return socket;
    };
  }
  throw new TypeError(`unsupported MQTT URL scheme ${parsed.protocol} (use mqtt:// or mqtts://)`);
}
