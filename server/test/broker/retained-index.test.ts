import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { indexRetained, topicMatches, type RetainedPersistence } from '../../src/broker/retained-index.ts';

function fakePersistence(): RetainedPersistence {
  const never = () => {
    throw new Error('replaced by the index');
  };
  return { storeRetained: never, createRetainedStream: never, createRetainedStreamCombi: never } as unknown as RetainedPersistence;
}

async function collect(stream: Readable): Promise<string[]> {
  const out: string[] = [];
  for await (const p of stream) out.push((p as { topic: string }).topic);
  return out.sort();
}

describe('retained message index', () => {
  it('matches MQTT filters like the broker does', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
    expect(topicMatches('+/x', '$SYS/x')).toBe(false);
    expect(topicMatches('$SYS/#', '$SYS/x')).toBe(true);
  });

  it('answers exact, device-prefix and fleet-wide filters with the right retained messages', async () => {
    const p = fakePersistence();
    const index = indexRetained(p);
    for (let i = 0; i < 50; i++) {
      await p.storeRetained({ topic: `flt/v1/d/dev-${i}/status`, payload: Buffer.from('online') });
      await p.storeRetained({ topic: `flt/v1/d/dev-${i}/desired`, payload: Buffer.from('{}') });
    }
    expect(index.size()).toBe(100);
    expect(await collect(p.createRetainedStream('flt/v1/d/dev-7/desired'))).toEqual(['flt/v1/d/dev-7/desired']);
    expect(await collect(p.createRetainedStream('flt/v1/d/dev-7/+'))).toEqual(['flt/v1/d/dev-7/desired', 'flt/v1/d/dev-7/status']);
    expect(await collect(p.createRetainedStreamCombi(['flt/v1/d/dev-1/#', 'flt/v1/d/dev-2/status']))).toEqual([
      'flt/v1/d/dev-1/desired',
      'flt/v1/d/dev-1/status',
      'flt/v1/d/dev-2/status',
    ]);
    expect(await collect(p.createRetainedStream('flt/v1/d/+/status'))).toHaveLength(50);
  });

  it('forgets a retained message when an empty payload is retained on its topic', async () => {
    const p = fakePersistence();
    const index = indexRetained(p);
    await p.storeRetained({ topic: 'flt/v1/d/a/status', payload: Buffer.from('x') });
    await p.storeRetained({ topic: 'flt/v1/d/a/status', payload: Buffer.alloc(0) });
    expect(index.size()).toBe(0);
    expect(await collect(p.createRetainedStream('flt/v1/d/a/+'))).toEqual([]);
  });

  it('calls back when aedes stores with a callback', async () => {
    const p = fakePersistence();
    indexRetained(p);
    await new Promise<void>((resolve, reject) => p.storeRetained({ topic: 't/x', payload: Buffer.from('1') }, (err) => (err ? reject(err) : resolve())));
    expect(await collect(p.createRetainedStream('t/x'))).toEqual(['t/x']);
  });
});
