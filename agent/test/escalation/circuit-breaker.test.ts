import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/escalation/circuit-breaker.ts';

function fakeClock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('circuit breaker', () => {
  it('opens after the threshold of consecutive failures and refuses until the open time has passed', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 5_000, now: clock.now });
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    b.failure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    clock.advance(4_999);
    expect(b.tryAcquire()).toBe(false);
    clock.advance(1);
    expect(b.state).toBe('half-open');
  });

  it('a success in between resets the count of consecutive failures', () => {
    const b = new CircuitBreaker({ failureThreshold: 2, now: fakeClock().now });
    b.failure();
    b.success();
    b.failure();
    expect(b.state).toBe('closed');
  });

  it('half-open lets one trial through at a time; its success closes the circuit', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 100, now: clock.now });
    b.failure();
    clock.advance(100);
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    expect(b.available()).toBe(false);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
  });

  it('a failed trial opens the circuit again for a full open time', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 5, openMs: 100, now: clock.now });
    for (let i = 0; i < 5; i++) b.failure();
    clock.advance(100);
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    clock.advance(99);
    expect(b.state).toBe('open');
    clock.advance(1);
    expect(b.state).toBe('half-open');
  });

  it('a successful health probe lets a trial through before the open time is over', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 60_000, now: clock.now });
    b.failure();
    expect(b.state).toBe('open');
    b.probeSucceeded();
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
  });

  it('a trial cancelled by its caller frees the slot without judging the endpoint', () => {
    const clock = fakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 10, now: clock.now });
    b.failure();
    clock.advance(10);
    expect(b.tryAcquire()).toBe(true);
    b.release();
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
  });
});
