import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Label used for requests naming a model the pool does not serve: names from outside never become series. */
export const UNKNOWN_MODEL_LABEL = '';

/**
 * The pool worker's metrics, on the registry its owner passes in (never prom-client's global one).
 * `flotilla_pool_queue_depth` is the figure the pool's HorizontalPodAutoscaler scales on.
 */
export class PoolMetrics {
  readonly queueDepth: Gauge<'model'>;
  readonly batchSize: Histogram<'model'>;
  readonly sessionRuns: Counter<'model' | 'version'>;
  readonly queueWait: Histogram<'model'>;
  readonly requestDuration: Histogram<'model'>;
  readonly requests: Counter<'model' | 'status'>;
  readonly replays: Counter<'model'>;

  constructor(registry: Registry, readDepth: () => ReadonlyMap<string, number>) {
    const registers = [registry];
    this.queueDepth = new Gauge({
      name: 'flotilla_pool_queue_depth',
      help: 'Inference requests waiting in the batching queue (not yet running), by model',
      labelNames: ['model'] as const,
      registers,
      // Read at scrape time: the hot path never touches the gauge.
      collect() {
        this.reset();
        for (const [model, depth] of readDepth()) this.set({ model }, depth);
      },
    });
    this.batchSize = new Histogram({
      name: 'flotilla_pool_batch_size',
      help: 'Rows (dim 0) per session run, by model',
      labelNames: ['model'] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.sessionRuns = new Counter({
      name: 'flotilla_pool_session_runs_total',
      help: 'Session runs (one per batch), by model version',
      labelNames: ['model', 'version'] as const,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'flotilla_pool_queue_wait_seconds',
      help: 'Time a request waited in the batching queue before its run started',
      labelNames: ['model'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'flotilla_pool_request_duration_seconds',
      help: 'Time from receiving a successful inference request to its answer, by model',
      labelNames: ['model'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.requests = new Counter({
      name: 'flotilla_pool_requests_total',
      help: 'Inference requests answered, by model and HTTP status',
      labelNames: ['model', 'status'] as const,
      registers,
    });
    this.replays = new Counter({
      name: 'flotilla_pool_idempotent_replays_total',
      help: 'Inference requests answered from the idempotency cache without running again',
      labelNames: ['model'] as const,
      registers,
    });
  }
}
