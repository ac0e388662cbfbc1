// Hashes and writes one artifact's bytes on its own thread, so the thread that receives them from
// the network does nothing but copy them into a shared ring. Plain JavaScript on purpose: a worker
// thread does not inherit the TypeScript loader the agent runs under (tsx, vitest).
//
// The file always holds exactly the bytes the hash has seen: each slice is written first and then
// hashed for the length the disk really took, so a failed write needs no re-hash.
//
// Ring layout (must match artifact-writer.ts): a control Int32Array and a data area of RING bytes.
// PRODUCED and CONSUMED are byte counters modulo 2^32 (RING divides 2^32, so `counter & mask` is the
// position); SEQ is bumped by the receiving thread on every push and at the end of an attempt, and
// is what this thread sleeps on; END asks this thread to return once the ring is drained.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const PRODUCED = 0;
const CONSUMED = 1;
const SEQ = 2;
const END = 3;

const { partialPath, control, data, syncEveryBytes } = workerData;
const ctl = new Int32Array(control);
const ring = Buffer.from(data);
const mask = ring.byteLength - 1;

let hash = createHash('sha256');
let fd = openSync(partialPath, 'a+');
let size = fstatSync(fd).size;
let unsynced = 0;

function resetFile() {
  ftruncateSync(fd, 0);
  hash = createHash('sha256');
  size = 0;
  unsynced = 0;
}

/** Hashes what the file already holds (a resumed download); a file longer than allowed starts over. */
function hashPrefix(limit) {
  hash = createHash('sha256');
  size = fstatSync(fd).size;
  if (size > limit) {
    resetFile();
    return 0;
  }
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  let at = 0;
  while (at < size) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.byteLength, size - at), at);
    if (n === 0) break;
    hash.update(chunk.subarray(0, n));
    at += n;
  }
  // A file that shrank under us: what was read is what counts.
  if (at < size) ftruncateSync(fd, at);
  size = at;
  return size;
}

/** Writes then hashes ring[pos, pos + n). Returns an error message instead of throwing. */
function take(pos, n) {
  let done = 0;
  try {
    while (done < n) {
      const wrote = writeSync(fd, ring, pos + done, n - done);
      hash.update(ring.subarray(pos + done, pos + done + wrote));
      done += wrote;
    }
  } catch (err) {
    return { done, error: `${err.code ?? 'EIO'}: ${err.message}` };
  }
  return { done, error: null };
}

/** Drains the ring until the receiving thread marks the end of the attempt. */
function stream() {
  let error = null;
  let written = 0;
  for (;;) {
    const seq = Atomics.load(ctl, SEQ);
    const produced = Atomics.load(ctl, PRODUCED);
    let consumed = Atomics.load(ctl, CONSUMED);
    let avail = (produced - consumed) | 0;
    if (avail === 0) {
      if (Atomics.load(ctl, END) === 1) break;
      Atomics.wait(ctl, SEQ, seq);
      continue;
    }
    while (avail > 0) {
      const pos = consumed & mask;
      const n = Math.min(avail, ring.byteLength - pos);
      // After a failed write the rest of the attempt is drained and dropped, so the sender never blocks.
      if (error === null) {
        const r = take(pos, n);
        size += r.done;
        written += r.done;
        unsynced += r.done;
        if (r.error) error = r.error;
        else if (syncEveryBytes > 0 && unsynced >= syncEveryBytes) {
          // Flushing as we go keeps the final fsync short; it runs here, off the receiving thread.
          fdatasyncSync(fd);
          unsynced = 0;
        }
      }
      consumed = (consumed + n) | 0;
      avail -= n;
      Atomics.store(ctl, CONSUMED, consumed);
      Atomics.notify(ctl, CONSUMED);
    }
  }
  return { size, written, error };
}

function handle(msg) {
  switch (msg.op) {
    case 'prefix':
      return { size: hashPrefix(msg.limit) };
    case 'reset':
      resetFile();
      return { size };
    case 'stream':
      return stream();
    case 'finish': {
      fdatasyncSync(fd);
      unsynced = 0;
      return { size, sha256: hash.digest('hex') };
    }
    case 'close':
      closeSync(fd);
      fd = -1;
      return { size };
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

parentPort.on('message', (msg) => {
  try {
    parentPort.postMessage({ id: msg.id, ok: true, ...handle(msg) });
  } catch (err) {
    parentPort.postMessage({ id: msg.id, ok: false, error: `${err.code ?? 'EIO'}: ${err.message}` });
  }
});
