// How the session worker opens and runs its onnxruntime session. Plain JavaScript, like the worker.
//
// onnxruntime-node's public InferenceSession wraps a synchronous native run in a promise that
// settles from setImmediate, so every run costs the thread a whole event-loop turn (an epoll call
// included) and its argument checks; for a model that runs in ~5 µs that doubled the run (23 against
// 10 µs per call measured here). A thread that exists only to run one session gains nothing from
// the turn, so the worker drives the addon's native session directly: the same `loadModel` and
// `run` the public class calls, with the same options. The addon's entry point is not a public
// API, so it is checked before use and the public class is used whenever it does not look as
// expected (another onnxruntime-node version); `direct: false` asks for the public class outright.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// ONNX TensorProto element types, as the addon reports them in its metadata.
const ELEMENT_TYPES = { 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 21: 'uint4', 22: 'int4' };

function nativeBinding() {
  try {
    const { binding, initOrt } = require('onnxruntime-node/dist/binding.js');
    const proto = binding?.InferenceSession?.prototype;
    if (typeof initOrt !== 'function' || typeof proto?.loadModel !== 'function' || typeof proto?.run !== 'function' || typeof proto?.dispose !== 'function') return undefined;
    return { binding, initOrt };
  } catch {
    return undefined;
  }
}

function metadataOf(raw) {
  return raw.map((m) => ({ name: m.name, isTensor: m.isTensor, type: m.isTensor ? (ELEMENT_TYPES[m.type] ?? null) : null, shape: m.isTensor ? [...m.shape] : [] }));
}

/**
 * A session whose `run(feeds, outputNames?)` answers synchronously (direct) or with a promise
 * (public class). Metadata entries: { name, isTensor, type (onnxruntime type name or null), shape
 * (numbers, -1 where symbolic) }.
 */
export async function openSession(ort, path, options, { direct = true } = {}) {
  const native = direct ? nativeBinding() : undefined;
  if (native) {
    native.initOrt();
    const session = new native.binding.InferenceSession();
    session.loadModel(path, options);
    const inputMetadata = metadataOf(session.inputMetadata);
    const outputMetadata = metadataOf(session.outputMetadata);
    const inputNames = inputMetadata.map((m) => m.name);
    const outputNames = outputMetadata.map((m) => m.name);
    const all = Object.fromEntries(outputNames.map((n) => [n, null]));
    const noOptions = {};
    return {
      direct: true,
      inputNames,
      outputNames,
      inputMetadata,
      outputMetadata,
      run: (feeds, names) => session.run(feeds, names ? Object.fromEntries(names.map((n) => [n, null])) : all, noOptions),
      release: async () => session.dispose(),
    };
  }
  const session = await ort.InferenceSession.create(path, options);
  const shapeOf = (m) => (m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : []);
  const meta = (list) => list.map((m) => ({ name: m.name, isTensor: m.isTensor, type: m.isTensor ? m.type : null, shape: shapeOf(m) }));
  return {
    direct: false,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: meta(session.inputMetadata),
    outputMetadata: meta(session.outputMetadata),
    run: (feeds, names) => (names ? session.run(feeds, names) : session.run(feeds)),
    release: () => session.release(),
  };
}
