/**
 * Hand-built MQTT 3.1.1 packets over a plain socket, for attacks a well-behaved client library
 * will not send (duplicate QoS 2 retransmissions, lying length fields).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { onTestFinished } from 'vitest';

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function packet(header: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([header]), remainingLength(body.length), body]);
}

export function connectPacket(clientId: string, username: string, password: string): Buffer {
  const flags = 0x80 | 0x40 | 0x02; // username, password, clean session
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, flags, 0, 60])]);
  return packet(0x10, Buffer.concat([variable, str(clientId), str(username), str(password)]));
}

export function publishQos2Packet(topic: string, messageId: number, payload: string, dup: boolean): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(messageId);
  return packet(0x34 | (dup ? 0x08 : 0), Buffer.concat([str(topic), id, Buffer.from(payload)]));
}

/** A raw connection that collects every byte the broker sends. */
export class RawConnection {
  readonly socket: Socket;
  received = Buffer.alloc(0);
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.received = Buffer.concat([this.received, chunk]);
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
      onTestFinished(() => {
        socket.destroy();
      });
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((resolve) => this.socket.once('close', () => resolve()));
  }
}
