import { Type, type Static } from 'typebox';
import { Name, Timestamp, Version, strict } from './common.ts';

/**
 * Drift monitoring (docs/inference.md "Drift", docs/registry.md "Drift"): one summary shape for what
 * an agent saw in a window of live traffic and for the reference a version was registered with.
 */

/** Histograms have this many equal-width bins. */
export const DRIFT_BINS = 10;
/** Most predicted classes a summary counts; classes beyond it are folded into the last one. */
export const DRIFT_MAX_CLASSES = 1000;

/** Event kind: an agent's summary of one window of one model version's traffic (telemetry). */
export const DRIFT_SUMMARY_EVENT = 'drift.summary';
/** Event kind: the server found a device's traffic past the drift threshold (stored as a device event). */
export const DRIFT_DETECTED_EVENT = 'drift.detected';
/** Event kind: a device's traffic came back below the threshold after a `drift.detected`. */
export const DRIFT_CLEARED_EVENT = 'drift.cleared';

const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Bins = Type.Array(Count, { minItems: DRIFT_BINS, maxItems: DRIFT_BINS });

export const DriftSummary = Type.Object(
  {
    /** Output rows (samples) summarized; a request with a batch of 8 counts 8. */
    rows: Count,
    input: Type.Object(
      {
        /** Value range of the histogram; values outside fall into the end bins. */
        lo: Type.Number(),
        hi: Type.Number(),
        /** Input elements looked at (sampled with a stride for large inputs). */
        elements: Count,
        mean: Type.Number(),
        std: Type.Number({ minimum: 0 }),
        hist: Bins,
      },
      strict,
    ),
    /** Rows by top-1 confidence, 10 bins over [0, 1]. */
    confidence: Bins,
    /** Rows by predicted class (top-1 index). */
    classes: Type.Array(Count, { maxItems: DRIFT_MAX_CLASSES }),
  },
  strict,
);
export type DriftSummary = Static<typeof DriftSummary>;

/** `data` of a `drift.summary` event. Windows do not overlap: each one starts where the last ended. */
export const DriftSummaryData = Type.Object(
  {
    model: Name,
    version: Version,
    windowStart: Timestamp,
    windowEnd: Timestamp,
    summary: DriftSummary,
  },
  strict,
);
export type DriftSummaryData = Static<typeof DriftSummaryData>;
