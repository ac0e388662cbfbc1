// One onnxruntime InferenceSession on its own thread. `session.run` is a synchronous native call
// behind a promise: it blocks the thread it runs on, so it must never run on the agent's event loop.
// Plain JavaScript on purpose: a worker thread does not inherit the TypeScript loader the agent
// runs under (tsx, vitest), and this file needs nothing but onnxruntime.
//
// Messages in (see session-worker-protocol.ts): run, close. Messages out: ready, load-failed,
// result, error, closed. Output buffers are transferred, never copied.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

const { path, providers, intraOpThreads } = workerData;

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
if (!session) {
  parentPort.postMessage({ t: 'load-failed', attempts });
  parentPort.close();
} else {
  parentPort.postMessage({ t: 'ready', provider, attempts, inputs: metadataOf(session.inputMetadata), outputs: metadataOf(session.outputMetadata) });
  let closing = false;
  parentPort.on('message', (msg) => {
    if (msg.t === 'run') void run(msg);
    else if (msg.t === 'close' && !closing) {
      closing = true;
      // Runs are serialized on this thread, so every run posted before 'close' has already answered.
      session.release().finally(() => {
        parentPort.postMessage({ t: 'closed' });
        parentPort.close();
      });
    }
  });

  async function run(msg) {
    let results;
    try {
      const feeds = {};
      for (const f of msg.feeds) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
      results = msg.outputs ? await session.run(feeds, msg.outputs) : await session.run(feeds);
    } catch (err) {
      parentPort.postMessage({ t: 'error', id: msg.id, message: messageOf(err) });
      return;
    }
    const outputs = [];
    const transfer = new Set();
    for (const [name, tensor] of Object.entries(results)) {
      const data = tensor.data;
      outputs.push({ name, type: tensor.type, dims: tensor.dims, data });
      if (ArrayBuffer.isView(data)) transfer.add(data.buffer);
    }
    try {
      parentPort.postMessage({ t: 'result', id: msg.id, outputs }, [...transfer]);
    } catch {
      // A buffer that cannot be detached (owned by the native side) is copied instead.
      parentPort.postMessage({ t: 'result', id: msg.id, outputs });
    }
  }
}
