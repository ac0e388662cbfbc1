import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Inference metrics, on the registry the agent passes in (never prom-client's global one). */
export class InferenceMetrics {
  readonly duration: Histogram<'model' | 'version' | 'provider'>;
  readonly queueDepth: Gauge<'model'>;
  readonly swaps: Counter<'model'>;
  readonly rollbacks: Counter<'model'>;
  readonly errors: Counter<'model' | 'code'>;
  readonly workerRestarts: Counter<'model' | 'version'>;
  readonly batchRows: Histogram<'model'>;

  constructor(registry: Registry, readDepth: () => ReadonlyMap<string, number>) {
    const registers = [registry];
    this.duration = new Histogram({
      name: 'flotilla_agent_inference_duration_seconds',
      help: 'Time from accepting an inference request to its answer, by model version and the provider that ran it',
      labelNames: ['model', 'version', 'provider'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'flotilla_agent_inference_queue_depth',
      help: 'Inference requests accepted and not yet answered, per model',
      labelNames: ['model'] as const,
      registers,
      collect: () => {
        this.queueDepth.reset();
        for (const [model, depth] of readDepth()) this.queueDepth.set({ model }, depth);
      },
    });
    this.swaps = new Counter({ name: 'flotilla_agent_inference_swaps_total', help: 'Activations of a staged model version', labelNames: ['model'] as const, registers });
    this.rollbacks = new Counter({ name: 'flotilla_agent_inference_rollbacks_total', help: 'Switches back to the previous model version', labelNames: ['model'] as const, registers });
    this.errors = new Counter({ name: 'flotilla_agent_inference_errors_total', help: 'Failed inference requests by error code', labelNames: ['model', 'code'] as const, registers });
    this.workerRestarts = new Counter({
      name: 'flotilla_agent_inference_worker_restarts_total',
      help: 'Inference worker threads that exited unexpectedly (restarted or given up on)',
      labelNames: ['model', 'version'] as const,
      registers,
    });
    this.batchRows = new Histogram({
      name: 'flotilla_agent_inference_batch_rows',
      help: 'Rows per micro-batch run',
      labelNames: ['model'] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    });
  }
}
