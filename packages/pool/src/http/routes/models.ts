import type { ModelMetadata } from '@flotilla/kserve';
import type { FastifyInstance } from 'fastify';
import type { ModelManager } from '../../repository/model-manager.ts';

interface ModelParams {
  name: string;
  version?: string;
}

/** Model metadata, readiness and batching config, with and without a version in the path. */
export function modelRoutes(app: FastifyInstance, models: ModelManager): void {
  const metadata = async (req: { params: ModelParams }): Promise<ModelMetadata> => {
    const v = models.resolve(req.params.name, req.params.version);
    return {
      name: v.model,
      versions: models.versionsOf(v.model).map((s) => s.version),
      platform: 'onnxruntime_onnx',
      inputs: v.inputs.map((t) => ({ ...t, shape: [...t.shape] })),
      outputs: v.outputs.map((t) => ({ ...t, shape: [...t.shape] })),
    };
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name', metadata);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', metadata);

  const ready = async (req: { params: ModelParams }, reply: { code(n: number): { send(): unknown } }) => {
    models.resolve(req.params.name, req.params.version);
    return reply.code(200).send();
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', ready);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', ready);

  // Triton answers this with its model configuration; clients read max_batch_size from it.
  const config = async (req: { params: ModelParams }) => {
    const v = models.resolve(req.params.name, req.params.version);
    const b = v.batching;
    return {
      name: v.model,
      platform: 'onnxruntime_onnx',
      max_batch_size: v.batchable ? b.maxBatchSize : 0,
      ...(b.dynamicBatching && { dynamic_batching: { preferred_batch_size: [...b.preferredBatchSizes], max_queue_delay_microseconds: b.maxQueueDelayUs, max_queue_size: b.maxQueueSize } }),
      instance_group: [{ count: b.instances, kind: v.provider === 'cpu' ? 'KIND_CPU' : 'KIND_GPU' }],
    };
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/config', config);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/config', config);
}
