import { createReadStream, statSync } from 'node:fs';
import { apiPath, CliError, type ApiClient } from '@flotilla/cli';
import type { ModelCard } from '@flotilla/modelkit';

/**
 * Publishes one model kit build as `model@version` the way a release pipeline does: the model
 * (once), a draft version with the card's signature and golden data, one CPU variant, the
 * artifact upload, then publish, which the server signs with its release key.
 */
export async function publishVersion(api: ApiClient, opts: { model: string; version: string; description: string; card: ModelCard; file: string }): Promise<{ sha256: string }> {
  const { model, version, card } = opts;
  try {
    await api.send('POST', '/v1/models', { name: model, description: 'MNIST digit classifier for edge devices' });
  } catch (err) {
    if (!(err instanceof CliError && err.code === 'FLT_REGISTRY_EXISTS')) throw err;
  }
  await api.send('POST', apiPath`/v1/models/${model}/versions`, {
    version,
    metadata: { description: opts.description, inputs: card.inputs, outputs: card.outputs, labels: card.labels, golden: card.golden },
  });
  const variant = `cpu-${card.precision}`;
  await api.send('POST', apiPath`/v1/models/${model}/versions/${version}/variants`, { id: variant, format: 'onnx', precision: card.precision, constraints: {} });
  const uploaded = await api.upload<{ sha256: string }>(apiPath`/v1/models/${model}/versions/${version}/variants/${variant}/artifact`, createReadStream(opts.file), statSync(opts.file).size);
  await api.send('POST', apiPath`/v1/models/${model}/versions/${version}/publish`, {});
  return uploaded;
}
