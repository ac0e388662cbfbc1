import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { buildModels, modelPath, type ModelCard } from '@flotilla/modelkit';
import { ADMIN_TOKEN, auth, type TestServer } from '../../server/test/helpers/server.ts';

/** modelkit builds are deterministic and cached by generator hash; the OTA unit tests share this folder. */
export const BUILD_DIR = join(tmpdir(), 'flotilla-ota-test-models');

export async function otaBuilds(): Promise<Map<string, ModelCard>> {
  const only = ['mnist-edge-int8', 'mnist-edge-fp32', 'mnist-edge-int8-bad-golden', 'mnist-edge-int8-unloadable'];
  return new Map((await buildModels(BUILD_DIR, { only })).map((c) => [c.name, c]));
}

/**
 * Publishes a build as `model@version` through the registry's REST API, the way a release pipeline
 * would: model (once), draft version with metadata and golden vectors, one CPU variant, the artifact
 * upload, then publish (signed with the server key). `extra.metadata` adds version metadata
 * (e.g. a drift reference).
 */
export async function publishBuild(t: TestServer, card: ModelCard, model: string, version: string, extra: { metadata?: Record<string, unknown> } = {}): Promise<void> {
  const inject = async (method: 'POST' | 'PUT', url: string, payload?: object | Buffer, contentType?: string) => {
    const res = await t.server.http.inject({
      method,
      url,
      headers: { ...auth(ADMIN_TOKEN), ...(contentType ? { 'content-type': contentType } : {}) },
      ...(payload ? { payload } : {}),
    });
    if (res.statusCode >= 300 && !(res.statusCode === 409 && url === '/v1/models')) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res;
  };
  await inject('POST', '/v1/models', { name: model });
  await inject('POST', `/v1/models/${model}/versions`, { version, metadata: { inputs: card.inputs, outputs: card.outputs, golden: card.golden, ...extra.metadata } });
  await inject('POST', `/v1/models/${model}/versions/${version}/variants`, { id: 'cpu', format: 'onnx', precision: card.precision, constraints: {} });
  await inject('PUT', `/v1/models/${model}/versions/${version}/variants/cpu/artifact`, readFileSync(modelPath(BUILD_DIR, card.name)), 'application/octet-stream');
  await inject('POST', `/v1/models/${model}/versions/${version}/publish`, {});
}

/** The local KServe v2 API URL the agent logged at start. */
export function localApiUrl(output: string): string | undefined {
  const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*local inference API listening|local inference API listening[^\n]*"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output);
  return m?.[1] ?? m?.[2];
}

/** One KServe v2 JSON inference with the card's golden input; returns the model version that answered. */
export async function inferVersion(url: string, model: string, card: ModelCard): Promise<string | null> {
  const inputs = Object.entries(card.golden.inputs).map(([name, tensor]) => ({ name, shape: tensor.shape, datatype: 'FP32', data: tensor.data }));
  try {
    const res = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
    if (res.status !== 200) return null;
    const body = (await res.json()) as { model_version?: string };
    return body.model_version ?? null;
  } catch {
    return null;
  }
}
