import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { RolloutView } from '@flotilla/protocol';
import { problemsText } from './render-rollout.ts';

export interface WatchDisplay {
  update(r: RolloutView): void;
  stop(): void;
}

/**
 * One progress bar per stage on a terminal: succeeded devices out of the stage's size, with the
 * funnel beside it. Bars are added as the funnel names stages, so the display follows a rollout
 * whose stages grow (continuous mode).
 */
export function stageBars(stream: Writable): WatchDisplay {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: 'stage {stage} [{bar}] {value}/{total} succeeded | pending {pending}, notified {notified}, baking {baking}{problems} | {state}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      // Redraw on every update: the funnel text changes even when the bar does not move.
      forceRedraw: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars: cliProgress.SingleBar[] = [];
  let stopped = false;
  return {
    update: (r) => {
      for (const f of r.funnel ?? []) {
        const payload = {
          stage: f.stage + 1,
          pending: f.counts.pending ?? 0,
          notified: f.counts.notified ?? 0,
          baking: f.baking,
          problems: problemsText(f.counts) ? `, ${problemsText(f.counts)}` : '',
          state: f.stage === r.stage ? r.state : f.stage < r.stage ? 'done' : 'waiting',
        };
        const bar = bars[f.stage] ?? (bars[f.stage] = multi.create(f.size, 0, payload));
        bar.setTotal(f.size);
        bar.update(f.counts.succeeded ?? 0, payload);
      }
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      multi.stop();
    },
  };
}
