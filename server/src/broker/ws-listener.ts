import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { AddressInfo } from 'node:net';
import type { BoundListener } from './tcp-listener.ts';

export const MQTT_WS_PATH = '/mqtt';

/** MQTT over WebSocket on /mqtt: each socket becomes a byte stream handed to the broker. */
export async function listenWs(
  host: string,
  port: number,
  maxMessageBytes: number,
  accept: (stream: Duplex, req: IncomingMessage) => void,
): Promise<BoundListener> {
  const wss = new WebSocketServer({
    host,
    port,
    path: MQTT_WS_PATH,
    maxPayload: maxMessageBytes,
    perMessageDeflate: false, // a zlib context per socket costs far more than MQTT saves
  });
  wss.on('connection', (ws, req) => {
    accept(createWebSocketStream(ws), req);
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => {
      wss.off('error', reject);
      resolve();
    });
  });
  return {
    port: (wss.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
