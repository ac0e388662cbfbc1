// One onnxruntime InferenceSession on its own thread. `session.run` is a synchronous native call
// behind a promise: it blocks the thread it runs on, so it must never run on the agent's event loop.
// Plain JavaScript on purpose: a worker thread does not inherit the TypeScript loader the agent
// runs under (tsx, vitest), and this file needs nothing but onnxruntime.
//
// Two channels (see session-worker-protocol.ts and shared-lane.ts for the layout):
//  - post-message: requests arrive as 'message' events, answers go back by postMessage with the
//    output buffers transferred;
//  - shared-memory: the thread sleeps in Atomics.wait. A small request is written into a
//    SharedArrayBuffer (the "fast lane") and its answer written back there; anything else is
//    posted on a MessagePort and pulled with receiveMessageOnPort after the same wake-up. This
//    skips the structured clone and the worker's event-loop wake-up on the hot path.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

const { path, providers, intraOpThreads, lane, port } = workerData;

// Must match shared-lane.ts.
const C_REQ = 0;
const C_RESP = 1;
const C_FAST = 2;
const C_STATUS = 3;
const C_ID = 4;
const C_COUNT = 5;
const C_MASK = 6;
const C_OUT_COUNT = 7;
const DESC_OFFSET = 64;
const DESC_INTS = 16;
const MAX_TENSORS = 16;
const MAX_RANK = 8;
const DATA_OFFSET = DESC_OFFSET + MAX_TENSORS * DESC_INTS * 4;
const STATUS_OK = 0;
const STATUS_POSTED = 1;
const TYPES = ['float32', 'float64', 'int8', 'uint8', 'int16', 'int32', 'int64', 'float16', 'bool'];
const CTORS = [Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Int32Array, BigInt64Array, Uint16Array, Uint8Array];

function messageOf(err) {
  return String(err && err.message ? err.message : err).slice(0, 500);
}

function metadataOf(list) {
  return list.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) } : { name: m.name, type: null, shape: [] }));
}

async function open() {
  const attempts = [];
  for (const provider of providers) {
    try {
      // One provider per attempt: onnxruntime-node throws (rather than falling back) when a
      // provider's libraries are missing, so the fallback order is walked here, one try each.
      const session = await ort.InferenceSession.create(path, {
        executionProviders: [provider],
        intraOpNumThreads: intraOpThreads,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      });
      return { session, provider, attempts };
    } catch (err) {
      attempts.push({ provider, error: messageOf(err) });
    }
  }
  return { session: null, provider: null, attempts };
}

const { session, provider, attempts } = await open();
const reply = port ?? parentPort;

async function runMessage(msg) {
  let results;
  try {
    const feeds = {};
    for (const f of msg.feeds) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
    results = msg.outputs ? await session.run(feeds, msg.outputs) : await session.run(feeds);
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
  parentPort.postMessage({ t: 'ready', provider, attempts, inputs: metadataOf(session.inputMetadata), outputs: metadataOf(session.outputMetadata) });
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
  const ctrl = new Int32Array(lane, 0, 16);
  const desc = new Int32Array(lane, DESC_OFFSET, MAX_TENSORS * DESC_INTS);
  const bytes = new Uint8Array(lane, DATA_OFFSET);
  const inputNames = session.inputNames;
  const outputNames = session.outputNames;
  const queue = [];
  let seen = 0;
  for (;;) {
    // The timeout only bounds how long a missed wake-up could stall; wake-ups come from notify.
    if (queue.length === 0 && Atomics.load(ctrl, C_FAST) !== 1) Atomics.wait(ctrl, C_REQ, seen, 1000);
    seen = Atomics.load(ctrl, C_REQ);
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      if (m.message.t === 'exit-now') process.exit(1);
      queue.push(m.message);
    }
    // The lane first: it carries the small, latency-bound requests.
    if (Atomics.load(ctrl, C_FAST) === 1) await runFast(ctrl, desc, bytes, inputNames, outputNames);
    const msg = queue.shift();
    if (msg?.t === 'close') return finish();
    if (msg) await runMessage(msg);
  }
}

async function runFast(ctrl, desc, bytes, inputNames, outputNames) {
  const id = ctrl[C_ID];
  const feeds = {};
  for (let i = 0; i < ctrl[C_COUNT]; i++) {
    const d = i * DESC_INTS;
    const Ctor = CTORS[desc[d]];
    const dims = Array.from(desc.subarray(d + 5, d + 5 + desc[d + 2]));
    // Copied out: the lane is reused by the next request while onnxruntime may keep the tensor.
    const data = new Ctor(bytes.slice(desc[d + 3], desc[d + 3] + desc[d + 4]).buffer);
    feeds[inputNames[desc[d + 1]]] = new ort.Tensor(TYPES[desc[d]], data, dims);
  }
  const mask = ctrl[C_MASK];
  let results;
  try {
    results = mask === -1 ? await session.run(feeds) : await session.run(feeds, outputNames.filter((_, i) => (mask & (1 << i)) !== 0));
  } catch (err) {
    reply.postMessage({ t: 'error', id, message: messageOf(err) });
    return answerFast(ctrl, STATUS_POSTED);
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
    // Too large (or a string tensor) for the lane: the answer travels by message instead.
    postResult(id, results);
    return answerFast(ctrl, STATUS_POSTED);
  }
  ctrl[C_OUT_COUNT] = count;
  answerFast(ctrl, STATUS_OK);
}

function answerFast(ctrl, status) {
  ctrl[C_STATUS] = status;
  Atomics.store(ctrl, C_FAST, 0);
  Atomics.add(ctrl, C_RESP, 1);
  Atomics.notify(ctrl, C_RESP);
}
