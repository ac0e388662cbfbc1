/**
 * A healthy simulated device for the soak: the broker bench's SimDevice (durable events acked by
 * the server, desired state watched), connected from a chosen loopback source address so that the
 * server's per-address guards see a fleet spread over many addresses, as in the field.
 */
import { connectDevice, type AckLedger, type EnrolledDevice, type SimDevice } from '../../server/bench/broker/fleet-sim.ts';

export function connectFrom(mqttUrl: string, d: EnrolledDevice, ledger: AckLedger, localAddress: string): Promise<SimDevice> {
  return connectDevice(mqttUrl, d, ledger, { localAddress, connectTimeoutMs: 60_000 });
}

/** Healthy devices share source addresses four to one, starting at 127.0.10.1. */
export function healthyAddress(index: number): string {
  const n = Math.floor(index / 4);
  return `127.0.${10 + Math.floor(n / 250)}.${1 + (n % 250)}`;
}
