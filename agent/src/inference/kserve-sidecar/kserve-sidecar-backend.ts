import { parseModelMetadata, type DecodeLimits } from '@flotilla/kserve';
import { FlotillaError, type ExecutionProvider } from '@flotilla/protocol';
import type { InferenceBackend, LoadSpec, TensorSpec } from '../types.ts';
import { KServeHttp, type HttpAnswer } from './kserve-http.ts';
import { placeModel, removeModel, repositoryName, REPOSITORY_VERSION } from './repository-layout.ts';
import { SidecarLoadedModel } from './sidecar-loaded-model.ts';

export interface KServeSidecarOptions {
  /** The local KServe v2 server, e.g. http://127.0.0.1:8000 (Triton started with --model-control-mode=explicit). */
  baseUrl: string;
  /** The server's --model-repository folder; the agent writes model folders into it. */
  repositoryDir: string;
  /** Formats this backend serves (default: TensorRT plans only). */
  formats?: readonly LoadSpec['format'][];
  /** Per inference request (default 10 s). */
  inferTimeoutMs?: number;
  /** Per repository load call; building a TensorRT engine context can take a while (default 120 s). */
  loadTimeoutMs?: number;
  /** Health, readiness, metadata and unload calls (default 5 s). */
  controlTimeoutMs?: number;
  /** Keep-alive connections to the server (default 8). */
  connections?: number;
  /** Caps on decoding the server's answers. */
  limits?: Partial<DecodeLimits>;
}

export interface SidecarHealth {
  live: boolean;
  ready: boolean;
}

/**
 * Serves TensorRT plans (and ONNX, when asked) through a local KServe v2 server with the model
 * repository extension: the agent places the verified artifact in the repository, asks the server
 * to load it, and infers over HTTP with the binary tensor extension.
 */
export class KServeSidecarBackend implements InferenceBackend {
  readonly kind = 'kserve-sidecar' as const;
  private readonly opts: KServeSidecarOptions;
  private readonly http: KServeHttp;
  private readonly loaded = new Set<SidecarLoadedModel>();
  private closing: Promise<void> | undefined;

  constructor(opts: KServeSidecarOptions) {
    this.opts = opts;
    this.http = new KServeHttp({ baseUrl: opts.baseUrl, ...(opts.connections !== undefined && { connections: opts.connections }) });
  }

  supports(spec: Pick<LoadSpec, 'format' | 'providers'>): boolean {
    return (this.opts.formats ?? ['tensorrt-plan']).includes(spec.format);
  }

  async health(): Promise<SidecarHealth> {
    const timeoutMs = this.controlTimeout();
    const [live, ready] = await Promise.all([
      this.http.call('GET', '/v2/health/live', { timeoutMs }).then((a) => a.status === 200, () => false),
      this.http.call('GET', '/v2/health/ready', { timeoutMs }).then((a) => a.status === 200, () => false),
    ]);
    return { live, ready };
  }

  async load(spec: LoadSpec): Promise<SidecarLoadedModel> {
    if (this.closing) throw new FlotillaError('FLT_INFER_UNAVAILABLE', 'the KServe sidecar backend is closed');
    if (!this.supports(spec)) throw new FlotillaError('FLT_INFER_LOAD_FAILED', `the KServe sidecar does not serve ${spec.format} here`);
    const name = repositoryName(spec.model, spec.version);
    await placeModel(this.opts.repositoryDir, name, spec);
    const path = `/v2/repository/models/${encodeURIComponent(name)}`;
    let serverLoaded = false;
    try {
      const answer = await this.http.call('POST', `${path}/load`, { body: '{}', headers: { 'content-type': 'application/json' }, timeoutMs: this.opts.loadTimeoutMs ?? 120_000 });
      if (answer.status !== 200) throw KServeHttp.upstreamError('FLT_KSERVE_LOAD_FAILED', `load ${name}`, answer);
      serverLoaded = true;
      const base = `/v2/models/${encodeURIComponent(name)}/versions/${REPOSITORY_VERSION}`;
      const ready = await this.http.call('GET', `${base}/ready`, { timeoutMs: this.controlTimeout() });
      if (ready.status !== 200) throw new FlotillaError('FLT_KSERVE_LOAD_FAILED', `${name} loaded but the server does not call it ready`, { status: ready.status });
      const meta = await this.http.call('GET', base, { timeoutMs: this.controlTimeout() });
      const { inputs, outputs } = this.readMetadata(name, meta);
      const provider: ExecutionProvider = spec.format === 'tensorrt-plan' ? 'tensorrt' : 'triton';
      const model = new SidecarLoadedModel(spec.model, spec.version, provider, inputs, outputs, {
        http: this.http,
        name,
        inferTimeoutMs: this.opts.inferTimeoutMs ?? 10_000,
        ...(this.opts.limits && { limits: this.opts.limits }),
        release: async () => {
          this.loaded.delete(model);
          await this.unloadFromServer(name);
        },
      });
      this.loaded.add(model);
      return model;
    } catch (err) {
      if (serverLoaded) await this.unloadFromServer(name);
      else await removeModel(this.opts.repositoryDir, name);
      throw err;
    }
  }

  /** Unloads every model this backend loaded, then closes its connections. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.loaded].map((m) => m.unload()));
      await this.http.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private controlTimeout(): number {
    return this.opts.controlTimeoutMs ?? 5_000;
  }

  private readMetadata(name: string, answer: HttpAnswer): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
    if (answer.status !== 200) throw KServeHttp.upstreamError('FLT_KSERVE_LOAD_FAILED', `metadata of ${name}`, answer);
    try {
      const meta = parseModelMetadata(JSON.parse(answer.body.toString('utf8')), this.opts.limits);
      return { inputs: meta.inputs, outputs: meta.outputs };
    } catch (err) {
      throw new FlotillaError('FLT_KSERVE_LOAD_FAILED', `metadata of ${name} is not usable: ${(err as Error).message}`);
    }
  }

  /**
   * Best effort: a server that is down has nothing loaded to free, and the folder goes either way,
   * so an unload never fails and never leaves a stale model in the repository.
   */
  private async unloadFromServer(name: string): Promise<void> {
    await this.http
      .call('POST', `/v2/repository/models/${encodeURIComponent(name)}/unload`, { body: '{}', headers: { 'content-type': 'application/json' }, timeoutMs: this.controlTimeout() })
      .catch(() => undefined);
    await removeModel(this.opts.repositoryDir, name);
  }
}
