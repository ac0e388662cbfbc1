/**
 * TEST SERVER ONLY. A small KServe v2 server with the model repository extension, standing in for
 * Triton in the sidecar backend's tests (there is no Triton on the development machines). It is not
 * part of the agent and serves nothing in production.
 *
 * It loads `<repository>/<name>/<highest numeric version>/model.onnx` or `model.plan` with
 * onnxruntime-node. It cannot run TensorRT: the tests place an ONNX file under the plan's name, and
 * this server opens whatever sits there as ONNX. Sessions run on its main thread; fine for tests.
 *
 * Usage: node --import tsx kserve-test-server.ts --repository <dir> [--port 0]
 * Prints `LISTENING <port>` on stdout once it listens on 127.0.0.1.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  decodeInferRequest,
  encodeErrorBody,
  encodeInferResponse,
  HEADER_LENGTH_HEADER,
  isKServeError,
  wantsBinaryOutput,
  type Datatype,
  type Tensor,
  type TensorMetadata,
} from '@flotilla/kserve';
import Fastify, { type FastifyReply } from 'fastify';
import * as ort from 'onnxruntime-node';
import { ORT_TYPE_OF, datatypeOfOrt } from '../../src/inference/datatypes.ts';


interface Loaded {
  version: string;
  session: ort.InferenceSession;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

const { values } = parseArgs({ options: { repository: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (!values.repository) throw new Error('--repository is required');
const repository = values.repository;
const models = new Map<string, Loaded>();

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function metadataOf(list: readonly ort.InferenceSession.ValueMetadata[]): TensorMetadata[] {
  return list.map((m) => {
    if (!m.isTensor) throw new HttpError(400, `${m.name} is not a tensor`);
    const datatype = datatypeOfOrt(m.type);
    if (!datatype) throw new HttpError(400, `${m.name} has unsupported type ${m.type}`);
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

async function load(name: string): Promise<void> {
  const dir = join(repository, name);
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || !existsSync(join(dir, 'config.pbtxt'))) throw new HttpError(400, `failed to load '${name}': no config.pbtxt`);
  const versions = readdirSync(dir).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  const version = versions[0];
  if (!version) throw new HttpError(400, `failed to load '${name}': no version folder`);
  const file = ['model.onnx', 'model.plan'].map((f) => join(dir, version, f)).find((f) => existsSync(f));
  if (!file) throw new HttpError(400, `failed to load '${name}': no model file`);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  } catch (err) {
    throw new HttpError(400, `failed to load '${name}': ${(err as Error).message}`);
  }
  await models.get(name)?.session.release();
  models.set(name, { version, session, inputs: metadataOf(session.inputMetadata), outputs: metadataOf(session.outputMetadata) });
}

function find(name: string, version: string | undefined): Loaded {
  const m = models.get(name);
  if (!m || (version !== undefined && version !== m.version)) throw new HttpError(400, `Request for unknown model: '${name}' is not found`);
  return m;
}

const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.setErrorHandler((err, _req, reply: FastifyReply) => {
  const status = err instanceof HttpError ? err.status : isKServeError(err) ? err.statusCode : 500;
  void reply.code(status).type('application/json').send(encodeErrorBody((err as Error).message));
});

app.get('/v2', async () => ({ name: 'flotilla-kserve-test-server', version: '0', extensions: ['binary_tensor_data', 'model_repository'] }));
app.get('/v2/health/live', async (_req, reply) => reply.code(200).send());
app.get('/v2/health/ready', async (_req, reply) => reply.code(200).send());

app.post('/v2/repository/index', async () => [...models].map(([name, m]) => ({ name, version: m.version, state: 'READY' })));
app.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', async (req) => {
  await load(req.params.name);
  return {};
});
app.post<{ Params: { name: string } }>('/v2/repository/models/:name/unload', async (req) => {
  await models.get(req.params.name)?.session.release();
  models.delete(req.params.name);
  return {};
});

type P = { name: string; version?: string };
const metadata = async (req: { params: P }) => {
  const m = find(req.params.name, req.params.version);
  return { name: req.params.name, versions: [m.version], platform: 'onnxruntime_onnx', inputs: m.inputs, outputs: m.outputs };
};
app.get<{ Params: P }>('/v2/models/:name', metadata);
app.get<{ Params: P }>('/v2/models/:name/versions/:version', metadata);
const ready = async (req: { params: P }, reply: FastifyReply) => {
  const m = models.get(req.params.name);
  const ok = m !== undefined && (req.params.version === undefined || req.params.version === m.version);
  return reply.code(ok ? 200 : 400).send();
};
app.get<{ Params: P }>('/v2/models/:name/ready', ready);
app.get<{ Params: P }>('/v2/models/:name/versions/:version/ready', ready);

const infer = async (req: { params: P; body: unknown; headers: Record<string, string | string[] | undefined> }, reply: FastifyReply) => {
  const m = find(req.params.name, req.params.version);
  const request = decodeInferRequest(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), {
    headerLength: req.headers[HEADER_LENGTH_HEADER] as string | undefined,
  });
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of request.inputs) feeds[t.name] = new ort.Tensor(ORT_TYPE_OF[t.datatype] as 'float32', t.data as Float32Array, t.shape);
  const wanted = request.outputs?.map((o) => o.name) ?? m.outputs.map((o) => o.name);
  const results = await m.session.run(feeds, wanted);
  const outputs: Tensor[] = wanted.map((name) => {
    const r = results[name] as ort.Tensor;
    return { name, datatype: datatypeOfOrt(r.type) as Datatype, shape: [...r.dims], data: r.data as Float32Array };
  });
  const encoded = encodeInferResponse({ model_name: req.params.name, model_version: m.version, outputs }, (n) => wantsBinaryOutput(request, n));
  reply.type(encoded.contentType);
  if (encoded.headerLength !== undefined) reply.header(HEADER_LENGTH_HEADER, encoded.headerLength);
  const body = encoded.body;
  return reply.send(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
};
app.post<{ Params: P }>('/v2/models/:name/infer', infer);
app.post<{ Params: P }>('/v2/models/:name/versions/:version/infer', infer);

await app.listen({ host: '127.0.0.1', port: Number(values.port) });
const address = app.server.address();
process.stdout.write(`LISTENING ${typeof address === 'object' && address ? address.port : 0}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
