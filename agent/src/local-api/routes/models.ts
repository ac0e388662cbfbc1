import type { ModelMetadata, RepositoryIndexEntry } from '@flotilla/kserve';
import { FlotillaError } from '@flotilla/protocol';
import type { FastifyInstance } from 'fastify';
import { servableVersions, type LocalInference, type LocalModelStatus, type LocalVersionStatus } from '../local-inference.ts';

interface ModelParams {
  name: string;
  version?: string;
}

/** The KServe platform name clients see for each backend. */
const PLATFORM: Record<LocalVersionStatus['backend'], string> = {
  onnxruntime: 'onnxruntime_onnx',
  'kserve-sidecar': 'tensorrt_plan',
};

export function findModel(inference: LocalInference, name: string): LocalModelStatus {
  const status = inference.status().find((m) => m.model === name);
  if (!status) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `no model ${name}`, { model: name });
  return status;
}

/** The version a path names, or the active one; unknown versions are 404. */
export function findVersion(status: LocalModelStatus, version: string | undefined): LocalVersionStatus | null {
  if (version === undefined) return status.active;
  const found = servableVersions(status).find((v) => v.version === version);
  if (!found) throw new FlotillaError('FLT_INFER_UNKNOWN_MODEL', `${status.model}@${version} is not loaded`, { model: status.model, version });
  return found;
}

function metadataOf(status: LocalModelStatus, v: LocalVersionStatus): ModelMetadata {
  return {
    name: status.model,
    versions: servableVersions(status).map((s) => s.version),
    platform: PLATFORM[v.backend],
    inputs: v.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
    outputs: v.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
  };
}

/** Model metadata and readiness, with and without a version, plus the repository index. */
export function modelRoutes(app: FastifyInstance, inference: LocalInference): void {
  const metadata = async (req: { params: ModelParams }) => {
    const status = findModel(inference, req.params.name);
    const v = findVersion(status, req.params.version);
    if (!v) throw new FlotillaError('FLT_KSERVE_MODEL_NOT_READY', `${status.model} has no active version`);
    return metadataOf(status, v);
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name', metadata);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', metadata);

  const ready = async (req: { params: ModelParams }, reply: { code(n: number): { send(): unknown } }) => {
    const v = findVersion(findModel(inference, req.params.name), req.params.version);
    if (!v) throw new FlotillaError('FLT_KSERVE_MODEL_NOT_READY', `${req.params.name} has no active version`);
    return reply.code(200).send();
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', ready);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', ready);

  // Read-only repository index: Triton clients use it to list models. Loading stays with the agent.
  app.post('/v2/repository/index', async () => {
    const entries: RepositoryIndexEntry[] = [];
    for (const m of inference.status()) {
      for (const v of servableVersions(m)) entries.push({ name: m.model, version: v.version, state: 'READY' });
    }
    return entries;
  });
}
