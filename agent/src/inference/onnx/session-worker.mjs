// One onnxruntime InferenceSession on its own thread. `session.run` is a synchronous native call
// behind a promise: it blocks the thread it runs on, so it must never run on the agent's event loop.
// Plain JavaScript on purpose: a worker thread does not inherit the TypeScript loader the agent
// runs under (tsx, vitest), and this file needs nothing but onnxruntime.
//
// Two channels (see session-worker-protocol.ts and shared-lane.ts for the layout):
//  - post-message: requests arrive as 'message' events, answers go back by postMessage with the
//    output buffers transferred;
//  - shared-memory: the thread sleeps in Atomics.wait. Small requests are written into slots of a
//    SharedArrayBuffer (the "fast lane") and their answers written back there, several in the
//    thread at once; anything else is posted on a MessagePort and pulled with receiveMessageOnPort
//    after the same wake-up. This skips the structured clone and the worker's event-loop wake-up
//    on the hot path. Out of work, the thread polls the lane for `spinUs` before it sleeps, so a
//    request that follows closely does not pay a futex wake-up.
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { openSession } from './session-direct.mjs';

const { path, providers, intraOpThreads, lane, port, spinUs = 0, loadNice = 0, direct = true } = workerData;

// Loading (the addon into a fresh thread, the session) costs this thread ~100 ms of CPU. On a
// two-core device that competes with the version still serving traffic during a hot swap, so the
// thread loads at a lower priority (nice + loadNice) and returns to its own before it serves.
// Linux takes a thread id where setpriority wants a pid. Going back up needs CAP_SYS_NICE: the
// thread first checks that it may raise its priority at all, and otherwise never lowers it.
function lowerPriority() {
  if (!(loadNice > 0)) return undefined;
  let tid;
  let own;
  try {
    tid = Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]);
    own = getPriority(tid);
    if (!(tid > 0) || own <= -20) return undefined;
    setPriority(tid, own - 1);
  } catch {
    return undefined;
  }
  try {
    setPriority(tid, Math.min(19, own + loadNice));
  } catch {
    restorePriority({ tid, own });
    return undefined;
  }
  return { tid, own };
}

function restorePriority(lowered) {
  if (!lowered) return;
  try {
    setPriority(lowered.tid, lowered.own);
  } catch {
    // Checked above; nothing better to do than serve at the lower priority.
  }
}

const lowered = lowerPriority();
const { default: ort } = await import('onnxruntime-node');

// Must match shared-lane.ts.
const C_REQ = 0;
const C_RESP = 1;
const C_SLEEPING = 2;
const C_SLOTS = 3;
const C_STRIDE = 4;
const GLOBAL_BYTES = 64;
const S_STATE = 0;
const S_STATUS = 1;
const S_ID = 2;
const S_COUNT = 3;
const S_MASK = 4;
const S_OUT_COUNT = 5;
const S_RUN_US = 6;
const SLOT_CTRL_INTS = 16;
const DESC_INTS = 16;
const MAX_TENSORS = 16;
const MAX_RANK = 8;
const SLOT_HEADER_BYTES = SLOT_CTRL_INTS * 4 + MAX_TENSORS * DESC_INTS * 4;
const READY = 1;
const DONE = 2;
const STATUS_OK = 0;
const STATUS_POSTED = 1;
const TYPES = ['float32', 'float64', 'int8', 'uint8', 'int16', 'int32', 'int64', 'float16', 'bool'];
const CTORS = [Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Int32Array, BigInt64Array, Uint16Array, Uint8Array];

function messageOf(err) {
  return String(err && err.message ? err.message : err).slice(0, 500);
}

function metadataOf(list) {
  return list.map((m) => ({ name: m.name, type: m.type, shape: m.shape }));
}

async function open() {
  const attempts = [];
  for (const provider of providers) {
    try {
      // One provider per attempt: onnxruntime-node throws (rather than falling back) when a
      // provider's libraries are missing, so the fallback order is walked here, one try each.
      const session = await openSession(ort, path, { executionProviders: [provider], intraOpNumThreads: intraOpThreads, interOpNumThreads: 1, logSeverityLevel: 3 }, { direct });
      return { session, provider, attempts };
    } catch (err) {
      attempts.push({ provider, error: messageOf(err) });
    }
  }
  return { session: null, provider: null, attempts };
}

const { session, provider, attempts } = await open();
restorePriority(lowered);
const reply = port ?? parentPort;

async function runMessage(msg) {
  let results;
  try {
    const feeds = {};
    for (const f of msg.feeds) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
    results = await session.run(feeds, msg.outputs);
  } catch (err) {
    reply.postMessage({ t: 'error', id: msg.id, message: messageOf(err) });
    return;
  }
  postResult(msg.id, results);
}

function postResult(id, results) {
  const outputs = [];
  const transfer = new Set();
  for (const [name, tensor] of Object.entries(results)) {
    const data = tensor.data;
    outputs.push({ name, type: tensor.type, dims: tensor.dims, data });
    if (ArrayBuffer.isView(data)) transfer.add(data.buffer);
  }
  try {
    reply.postMessage({ t: 'result', id, outputs }, [...transfer]);
  } catch {
    // A buffer that cannot be detached (owned by the native side) is copied instead.
    reply.postMessage({ t: 'result', id, outputs });
  }
}

function finish() {
  session.release().finally(() => {
    reply.postMessage({ t: 'closed' });
    port?.close();
    parentPort.close();
  });
}

if (!session) {
  parentPort.postMessage({ t: 'load-failed', attempts });
  port?.close();
  parentPort.close();
} else {
  parentPort.postMessage({
    t: 'ready',
    provider,
    attempts,
    inputs: metadataOf(session.inputMetadata),
    outputs: metadataOf(session.outputMetadata),
    runner: session.direct ? 'native' : 'public',
  });
  if (lane) void sharedLoop();
  else {
    let closing = false;
    parentPort.on('message', (msg) => {
      if (msg.t === 'run') void runMessage(msg);
      else if (msg.t === 'exit-now') process.exit(1);
      else if (msg.t === 'close' && !closing) {
        closing = true;
        // Runs are serialized on this thread, so every run posted before 'close' has already answered.
        finish();
      }
    });
  }
}

async function sharedLoop() {
  const ctrl = new Int32Array(lane, 0, GLOBAL_BYTES / 4);
  const stride = ctrl[C_STRIDE];
  const slots = Array.from({ length: ctrl[C_SLOTS] }, (_, k) => {
    const base = GLOBAL_BYTES + k * stride;
    return {
      ctrl: new Int32Array(lane, base, SLOT_CTRL_INTS),
      desc: new Int32Array(lane, base + SLOT_CTRL_INTS * 4, MAX_TENSORS * DESC_INTS),
      bytes: new Uint8Array(lane, base + SLOT_HEADER_BYTES, stride - SLOT_HEADER_BYTES),
    };
  });
  const inputNames = session.inputNames;
  const outputNames = session.outputNames;
  const queue = [];
  let cursor = 0;
  let pollHits = 1;
  let pollProbe = 0;
  // Takes the next READY slot after the last one served, so slots are served in turn.
  const nextReady = () => {
    for (let k = 0; k < slots.length; k++) {
      const s = slots[(cursor + k) % slots.length];
      if (Atomics.load(s.ctrl, S_STATE) === READY) {
        cursor = (cursor + k + 1) % slots.length;
        return s;
      }
    }
    return undefined;
  };
  for (;;) {
    // Read before looking for work: a request submitted after this changes it, so the wait below returns.
    const seen = Atomics.load(ctrl, C_REQ);
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      if (m.message.t === 'exit-now') process.exit(1);
      queue.push(m.message);
    }
    const slot = nextReady();
    if (slot) await runSlot(ctrl, slot, inputNames, outputNames);
    const msg = queue.shift();
    if (msg?.t === 'close') {
      // The agent closes only once nothing is in flight; answer any straggler all the same.
      for (let s = nextReady(); s; s = nextReady()) await runSlot(ctrl, s, inputNames, outputNames);
      return finish();
    }
    if (msg) await runMessage(msg);
    if (slot || msg) continue;
    // Poll only while polls keep catching requests (a moving hit rate of at least one half), with
    // one probe in 32 idle gaps otherwise: when requests come seldom, polling only burns a core.
    if (spinUs > 0 && (pollHits >= 0.5 || (++pollProbe & 31) === 0)) {
      const until = performance.now() + spinUs / 1000;
      while (Atomics.load(ctrl, C_REQ) === seen && performance.now() < until);
      const hit = Atomics.load(ctrl, C_REQ) !== seen;
      pollHits = pollHits * 0.9 + (hit ? 0.1 : 0);
      if (hit) continue;
    }
    // The flag tells the agent a notify is needed; set before the wait re-checks the seq, so a
    // request submitted in between is either seen by the wait or followed by a notify.
    // The timeout only bounds how long a missed wake-up could stall.
    Atomics.store(ctrl, C_SLEEPING, 1);
    Atomics.wait(ctrl, C_REQ, seen, 1000);
    Atomics.store(ctrl, C_SLEEPING, 0);
  }
}

async function runSlot(ctrl, slot, inputNames, outputNames) {
  const { desc, bytes } = slot;
  const started = performance.now();
  const id = slot.ctrl[S_ID];
  const feeds = {};
  for (let i = 0; i < slot.ctrl[S_COUNT]; i++) {
    const d = i * DESC_INTS;
    const Ctor = CTORS[desc[d]];
    const dims = Array.from(desc.subarray(d + 5, d + 5 + desc[d + 2]));
    // Copied out: the slot is reused by the next request while onnxruntime may keep the tensor.
    const data = new Ctor(bytes.slice(desc[d + 3], desc[d + 3] + desc[d + 4]).buffer);
    feeds[inputNames[desc[d + 1]]] = new ort.Tensor(TYPES[desc[d]], data, dims);
  }
  const mask = slot.ctrl[S_MASK];
  let results;
  try {
    results = session.run(feeds, mask === -1 ? undefined : outputNames.filter((_, i) => (mask & (1 << i)) !== 0));
    // A direct session answers at once; awaiting it anyway would cost a microtask turn per run.
    if (!session.direct) results = await results;
  } catch (err) {
    reply.postMessage({ t: 'error', id, message: messageOf(err) });
    return answerSlot(ctrl, slot, STATUS_POSTED, started);
  }
  let offset = 0;
  let count = 0;
  let fits = true;
  for (const [name, tensor] of Object.entries(results)) {
    const type = TYPES.indexOf(tensor.type);
    const data = tensor.data;
    const aligned = (offset + 7) & ~7;
    if (type < 0 || tensor.dims.length > MAX_RANK || count >= MAX_TENSORS || aligned + data.byteLength > bytes.length) {
      fits = false;
      break;
    }
    const d = count * DESC_INTS;
    desc[d] = type;
    desc[d + 1] = outputNames.indexOf(name);
    desc[d + 2] = tensor.dims.length;
    desc[d + 3] = aligned;
    desc[d + 4] = data.byteLength;
    for (let k = 0; k < tensor.dims.length; k++) desc[d + 5 + k] = tensor.dims[k];
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), aligned);
    offset = aligned + data.byteLength;
    count++;
  }
  if (!fits) {
    // Too large (or a string tensor) for the slot: the answer travels by message instead.
    postResult(id, results);
    return answerSlot(ctrl, slot, STATUS_POSTED, started);
  }
  slot.ctrl[S_OUT_COUNT] = count;
  answerSlot(ctrl, slot, STATUS_OK, started);
}

function answerSlot(ctrl, slot, status, started) {
  slot.ctrl[S_STATUS] = status;
  // The agent thread decides from this whether polling for the next answer is worth it.
  slot.ctrl[S_RUN_US] = Math.min(1e9, Math.round((performance.now() - started) * 1000));
  Atomics.store(slot.ctrl, S_STATE, DONE);
  Atomics.add(ctrl, C_RESP, 1);
  Atomics.notify(ctrl, C_RESP);
}
