import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModels, modelPath, type ModelCard } from '@flotilla/modelkit';
import { request } from 'undici';
import { connect } from 'node:net';
import { ADMIN_TOKEN, auth, type TestServer } from '../helpers/server.ts';

export interface BuiltModel {
  card: ModelCard;
  bytes: Buffer;
}

/** Real ONNX builds from the model kit (fp32 and static int8 of the tiny MLP), cached per folder. */
export async function buildTinyModels(): Promise<{ fp32: BuiltModel; int8: BuiltModel; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'flt-registry-models-'));
  const cards = await buildModels(dir, { only: ['tiny-mlp-fp32', 'tiny-mlp-int8-static'] });
  const load = (name: string): BuiltModel => {
    const card = cards.find((c) => c.name === name)!;
    return { card, bytes: readFileSync(modelPath(dir, name)) };
  };
  return { fp32: load('tiny-mlp-fp32'), int8: load('tiny-mlp-int8-static'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Version metadata straight from a model card: signatures, labels, golden vectors, metrics. */
export function metadataFrom(card: ModelCard) {
  return {
    description: card.description,
    inputs: card.inputs,
    outputs: card.outputs,
    labels: card.labels,
    golden: card.golden,
    metrics: card.metrics,
    tags: ['test'],
  };
}

// Answers are read by path in the tests, each asserting the shape it reads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface Api {
  call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: Json; headers: Record<string, string | string[] | undefined> }>;
  upload(path: string, bytes: Buffer, token?: string): Promise<{ status: number; json: Json }>;
}

/** JSON calls over a real socket, as an admin unless told otherwise. */
export function api(t: TestServer): Api {
  return {
    async call(method, path, body, token = ADMIN_TOKEN) {
      const res = await request(`${t.http}${path}`, {
        method: method as 'GET',
        headers: { ...auth(token), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.body.text();
      return { status: res.statusCode, json: text ? JSON.parse(text) : null, headers: res.headers };
    },
    async upload(path, bytes, token = ADMIN_TOKEN) {
      const res = await request(`${t.http}${path}`, {
        method: 'PUT',
        headers: { ...auth(token), 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      const text = await res.body.text();
      return { status: res.statusCode, json: text ? JSON.parse(text) : null };
    },
  };
}

export function basic(deviceId: string, credential: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${deviceId}:${credential}`).toString('base64')}` };
}

/**
 * A draft version of `model` with an fp32 variant (any provider) and an int8 CPU variant, both
 * uploaded. Returns the measured sha256 of each.
 */
export async function draftWithVariants(a: Api, model: string, version: string, built: { fp32: BuiltModel; int8: BuiltModel }) {
  const m = await a.call('POST', '/v1/models', { name: model, description: 'tiny classifier' });
  if (m.status !== 201 && m.status !== 409) throw new Error(`model: ${m.status} ${JSON.stringify(m.json)}`);
  const v = await a.call('POST', `/v1/models/${model}/versions`, { version, metadata: metadataFrom(built.fp32.card) });
  if (v.status !== 201) throw new Error(`version: ${v.status} ${JSON.stringify(v.json)}`);
  const base = `/v1/models/${model}/versions/${version}/variants`;
  for (const [id, precision, constraints] of [
    ['onnx-fp32', 'fp32', {}],
    ['cpu-int8', 'int8', { executionProvider: 'cpu' }],
  ] as const) {
    const r = await a.call('POST', base, { id, format: 'onnx', precision, constraints });
    if (r.status !== 201) throw new Error(`variant ${id}: ${r.status} ${JSON.stringify(r.json)}`);
  }
  const up32 = await a.upload(`${base}/onnx-fp32/artifact`, built.fp32.bytes);
  const up8 = await a.upload(`${base}/cpu-int8/artifact`, built.int8.bytes);
  if (up32.status !== 200 || up8.status !== 200) throw new Error(`upload: ${up32.status} ${up8.status}`);
  return { fp32: up32.json.sha256 as string, int8: up8.json.sha256 as string };
}

/** Files under `<dataDir>/artifacts` (blobs and temp files), relative, sorted. */
export function storedFiles(t: TestServer): string[] {
  const root = join(t.dataDir, 'artifacts');
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

/** Polls until `check` stops throwing (cleanup after a dropped connection happens asynchronously). */
export async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Status of a GET for a path sent exactly as given (no client-side URL normalisation), as an admin. */
export function rawStatus(t: TestServer, path: string): Promise<number> {
  const url = new URL(t.http);
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}
