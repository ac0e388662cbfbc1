import { api, query } from '../api.js';
import { h } from '../dom.js';
import { percent } from '../format.js';

/** Failed, rejected and timed-out devices of the rollout grouped by stage and reason. */
export async function failureReasons(rollout, signal) {
  const out = new Map();
  for (const state of ['failed', 'rejected', 'timedOut']) {
    if (!(rollout.counts[state] > 0)) continue;
    const page = await api(`/v1/rollouts/${encodeURIComponent(rollout.id)}/devices${query({ state, limit: 1000 })}`, { signal });
    for (const d of page.items) {
      const reason = `${state}: ${d.error ?? 'no reason given'}`;
      const perStage = out.get(d.stage) ?? new Map();
      perStage.set(reason, (perStage.get(reason) ?? 0) + 1);
      out.set(d.stage, perStage);
    }
  }
  return out;
}

function step(name, value, title) {
  return h('li', { class: `step step-${name}`, dataset: { step: name }, title }, h('span', { class: 'step-value' }, String(value)), h('span', { class: 'step-label' }, name));
}

/** One stage: progress towards its required successes, the funnel, and failures by reason. */
export function stageView(rollout, f, reasons) {
  const spec = rollout.spec?.stages?.[f.stage] ?? {};
  const succeeded = f.counts.succeeded ?? 0;
  const failed = (f.counts.failed ?? 0) + (f.counts.rejected ?? 0) + (f.counts.timedOut ?? 0);
  const current = rollout.stage === f.stage && !['completed', 'cancelled', 'reverted', 'preempted'].includes(rollout.state);
  // The engine counts each notified device's install step from its latest report.
  const inFlight = f.inFlight ?? {};
  const s = { downloading: inFlight.downloading ?? 0, verified: (inFlight.verified ?? 0) + (inFlight.installed ?? 0), activated: inFlight.activated ?? 0 };
  const reasonRows = [...(reasons?.get(f.stage) ?? new Map())].sort((a, b) => b[1] - a[1]);
  // The engine's normalized spec carries both fields, the unused one null.
  const target = typeof spec.count === 'number' ? `${spec.count} ${spec.count === 1 ? 'device' : 'devices'}` : `${spec.percent}% of the target`;
  return h(
    'section',
    { class: `card stage${current ? ' current' : ''}`, id: `stage-${f.stage}`, dataset: { stage: String(f.stage) } },
    h(
      'h3',
      {},
      `Stage ${f.stage + 1}`,
      h('span', { class: 'muted' }, ` · ${target}${spec.requireApproval ? ' · needs approval' : ''}${spec.bakeTimeSec ? ` · bake ${spec.bakeTimeSec}s` : ''} · needs ${f.required} of ${f.size}`),
    ),
    h(
      'div',
      { class: 'bar-row' },
      h('progress', { class: 'stage-progress', max: Math.max(1, f.size), value: succeeded }),
      h('span', { class: 'stage-progress-text' }, `${succeeded} / ${f.size} succeeded (${percent(succeeded, f.size)})`),
    ),
    h(
      'ol',
      { class: 'funnel' },
      step('notified', f.reached.notified, 'devices ever sent the new version in this stage'),
      step('downloading', s.downloading, 'notified devices downloading now'),
      step('verified', s.verified, 'notified devices with the release verified (or installed), not yet switched'),
      step('activated', s.activated, 'notified devices serving the new version, health window running'),
      step('healthy', f.reached.healthy, 'devices that reported healthy on the new version'),
      step('baking', f.baking, 'healthy now and inside the bake time'),
      step('succeeded', f.reached.succeeded, 'healthy for the whole bake time'),
      step('failed', failed, 'failed, rejected or timed out'),
    ),
    reasonRows.length
      ? h('ul', { class: 'reasons' }, reasonRows.map(([reason, n]) => h('li', {}, h('span', { class: 'reason-count' }, String(n)), ' ', reason)))
      : null,
  );
}
