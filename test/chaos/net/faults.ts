/**
 * What a fault proxy does to the bytes between a client (an agent) and its target (the server's
 * MQTT or HTTP port, a pool worker). Shaping faults (latency, trickle, bandwidth) only slow bytes
 * down and keep their order; breaking faults (blackhole, half-open, one-way, reset) ruin the
 * connections they touch, which stay ruined after the fault is cleared, the way a connection
 * whose packets were lost cannot resume mid-stream. Connections opened after `pass` is set again
 * work normally.
 */
export type Fault =
  | { mode: 'pass' }
  /** Every chunk, each direction, is delivered `ms` after it arrived; order is kept. */
  | { mode: 'latency'; ms: number }
  /** Accept and swallow: nothing is forwarded either way, no socket is closed. */
  | { mode: 'blackhole' }
  /**
   * One side is dropped without the other being told: `orphan` is the side left open, its bytes
   * swallowed and nothing ever arriving (the other side's socket is destroyed).
   */
  | { mode: 'half-open'; orphan: 'client' | 'target' }
  /** One direction stops (`up`: client to target; `down`: target to client), the other flows. */
  | { mode: 'one-way'; drop: 'up' | 'down' }
  /** Both sides destroyed with RST; new connections are reset as soon as they are accepted. */
  | { mode: 'reset' }
  /** `bytes` bytes every `everyMs`, each direction. */
  | { mode: 'trickle'; bytes: number; everyMs: number }
  /** A token bucket of `bytesPerSec`, each direction, bursts up to `burstBytes` (default rate / 10). */
  | { mode: 'bandwidth'; bytesPerSec: number; burstBytes?: number };

export type FaultMode = Fault['mode'];

export const PASS: Fault = { mode: 'pass' };

/** Faults that ruin the connections they touch. */
export function breaks(f: Fault): boolean {
  return f.mode === 'blackhole' || f.mode === 'half-open' || f.mode === 'one-way' || f.mode === 'reset';
}
