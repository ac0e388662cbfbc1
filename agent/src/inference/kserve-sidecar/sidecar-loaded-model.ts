import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH_HEADER, isKServeError, type DecodeLimits } from '@flotilla/kserve';
import { FlotillaError, type ExecutionProvider } from '@flotilla/protocol';
import type { LoadedModel, Tensor, TensorSpec } from '../types.ts';
import { validateInputs } from '../validate-inputs.ts';
import { KServeHttp } from './kserve-http.ts';
import { REPOSITORY_VERSION } from './repository-layout.ts';

export interface SidecarModelDeps {
  http: KServeHttp;
  /** Repository model name (`<model>--<version>`). */
  name: string;
  inferTimeoutMs: number;
  limits?: Partial<DecodeLimits>;
  /** Unloads the repository model and removes its folder; called once. */
  release: () => Promise<void>;
}

/** A model version served by the sidecar KServe server, called over HTTP with the binary extension. */
export class SidecarLoadedModel implements LoadedModel {
  private readonly deps: SidecarModelDeps;
  private readonly path: string;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private unloading: Promise<void> | undefined;

  constructor(
    readonly model: string,
    readonly version: string,
    readonly provider: ExecutionProvider,
    readonly inputs: readonly TensorSpec[],
    readonly outputs: readonly TensorSpec[],
    deps: SidecarModelDeps,
  ) {
    this.deps = deps;
    this.path = `/v2/models/${encodeURIComponent(deps.name)}/versions/${REPOSITORY_VERSION}`;
  }

  async infer(inputs: readonly Tensor[], opts: { outputs?: readonly string[]; signal?: AbortSignal; validated?: boolean } = {}): Promise<Tensor[]> {
    if (this.unloading) throw new FlotillaError('FLT_INFER_UNAVAILABLE', `${this.model}@${this.version} is unloading`);
    if (!opts.validated) validateInputs(this.inputs, inputs);
    this.inFlight++;
    try {
      const encoded = encodeInferRequest(
        {
          inputs,
          ...(opts.outputs && { outputs: opts.outputs.map((name) => ({ name, binary: true })) }),
          binaryOutput: true,
        },
        { binaryInputs: true },
      );
      const answer = await this.deps.http.call('POST', `${this.path}/infer`, {
        body: encoded.body,
        headers: { 'content-type': encoded.contentType, [HEADER_LENGTH_HEADER]: String(encoded.headerLength ?? '') },
        timeoutMs: this.deps.inferTimeoutMs,
        ...(opts.signal && { signal: opts.signal }),
      });
      if (answer.status !== 200) throw await this.inferError(answer);
      try {
        const headerLength = answer.headers[HEADER_LENGTH_HEADER];
        const decoded = decodeInferResponse(answer.body, { headerLength: typeof headerLength === 'string' ? headerLength : undefined, limits: this.deps.limits });
        return decoded.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: t.data }));
      } catch (err) {
        if (isKServeError(err)) throw new FlotillaError('FLT_KSERVE_UPSTREAM_ERROR', `the server's answer does not decode: ${err.message}`, { cause: err.code });
        throw err;
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /** An error answer is a lost model when the server no longer calls it ready, else the server's own error. */
  private async inferError(answer: Awaited<ReturnType<KServeHttp['call']>>): Promise<FlotillaError> {
    const ready = await this.deps.http.call('GET', `${this.path}/ready`, { timeoutMs: this.deps.inferTimeoutMs }).catch(() => undefined);
    if (ready && ready.status !== 200) {
      return new FlotillaError('FLT_KSERVE_MODEL_NOT_READY', `the KServe server no longer has ${this.model}@${this.version} loaded`, { name: this.deps.name });
    }
    return KServeHttp.upstreamError('FLT_KSERVE_UPSTREAM_ERROR', `infer ${this.model}@${this.version}`, answer);
  }

  unload(): Promise<void> {
    this.unloading ??= (async () => {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      await this.deps.release();
    })();
    return this.unloading;
  }
}
