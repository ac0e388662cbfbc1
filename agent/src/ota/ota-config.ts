import type { HealthGateConfig } from './health-gate.ts';

export interface OtaDownloadConfig {
  /** No byte for this long aborts a download attempt (ms). */
  stallMs: number;
  /** Attempts in a row without progress before the download fails. */
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Least time between two `ota.downloading` progress events / reports (ms). */
  progressIntervalMs: number;
  /** How artifact bodies are fetched (artifact-get.ts): `direct` (default) or `undici` only. */
  transport?: 'direct' | 'undici';
}

export interface OtaConfig {
  health: HealthGateConfig;
  download: OtaDownloadConfig;
  /** Free disk kept on top of the new file (bytes of headroom for logs, the database, the OS). */
  reserveBytes: number;
  /** First retry of a release whose install failed for a passing reason (network, disk); doubles up to 16×. */
  retryMs: number;
  /** How often the serving versions' health counters are re-reported when they moved (ms; 0: only with state changes). */
  healthReportMs: number;
  /** Least time between two reports of a running A/B split's counters (ms; default 1,000). */
  abReportMs?: number;
}

export const DEFAULT_OTA_CONFIG: OtaConfig = {
  health: { windowMs: 10_000, minRequests: 20, maxErrorRate: 0.05, maxP99Ms: null, maxWaitMs: 60_000, pollMs: 500 },
  download: { stallMs: 30_000, maxAttempts: 5, backoffMs: 1_000, maxBackoffMs: 30_000, progressIntervalMs: 1_000, transport: 'direct' },
  reserveBytes: 64 * 1024 * 1024,
  retryMs: 30_000,
  healthReportMs: 30_000,
  abReportMs: 1_000,
};
