import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';

export interface Progress {
  update(bytes: number): void;
  stop(): void;
}

const silent: Progress = { update: () => {}, stop: () => {} };

/** An upload progress bar on stderr, or nothing when it would only garble a log or a pipe. */
export function uploadProgress(opts: { enabled: boolean; stream: Writable; total: number; label: string }): Progress {
  if (!opts.enabled) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream: opts.stream,
      format: `${opts.label} [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(opts.total, 0);
  let stopped = false;
  return {
    update: (bytes) => bar.update(bytes),
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
