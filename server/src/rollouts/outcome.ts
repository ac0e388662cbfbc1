import type { ReportedState } from '@flotilla/protocol';

/** What one device report says about a device a rollout moved. */
export type ReportOutcome =
  | { kind: 'ignore' }
  | { kind: 'progress' }
  | { kind: 'healthy' }
  | { kind: 'failed'; error: string | null }
  | { kind: 'rejected'; version: string | null };

/**
 * Classifies a report for one rollout device. Only reports that reflect the desired generation the
 * rollout wrote (or a later one) count, so a report about an older desired state never decides
 * anything. Then:
 * - `failed` for the model → failed (whatever version still serves: the new one did not take);
 * - the new version `healthy` → healthy (the bake time starts);
 * - another version `activated` or `healthy` → rejected (the device went back on its own);
 * - anything else (pending, downloading, verified, installed, activated on the new version) → progress.
 */
export function classifyReport(reported: ReportedState, model: string, newVersion: string, generation: number): ReportOutcome {
  if (reported.appliedGeneration < generation) return { kind: 'ignore' };
  const m = reported.models[model];
  if (!m) return { kind: 'progress' };
  if (m.state === 'failed') return { kind: 'failed', error: m.error ?? null };
  if (m.version === newVersion) return m.state === 'healthy' ? { kind: 'healthy' } : { kind: 'progress' };
  if (m.state === 'healthy' || m.state === 'activated') return { kind: 'rejected', version: m.version };
  return { kind: 'progress' };
}
