/* global AbortController */
import { api, query } from '../api.js';
import { h, replace, facts, table, notice } from '../dom.js';
import { ago, bytes, dateTime, labelText } from '../format.js';
import { link } from '../router.js';

const RECENT_EVENTS = 50;

function inventoryView(inv) {
  if (!inv) return notice('No inventory reported yet.', 'info');
  return facts([
    ['Architecture', inv.arch],
    ['OS', [inv.os.platform, inv.os.release, inv.os.distro].filter(Boolean).join(' · ')],
    ['CPU', `${inv.cpu.model} (${inv.cpu.cores} cores)`],
    ['Memory', bytes(inv.memoryBytes)],
    ['Disk', `${bytes(inv.disk.freeBytes)} free of ${bytes(inv.disk.totalBytes)} (${inv.disk.path})`],
    ['GPU', inv.gpu ? `${inv.gpu.name} (compute ${inv.gpu.computeCapability}${inv.gpu.memoryBytes ? `, ${bytes(inv.gpu.memoryBytes)}` : ''})` : 'none'],
    ['CUDA', inv.cudaVersion],
    ['TensorRT', inv.tensorrtVersion],
    ['JetPack', inv.jetpackVersion],
    ['Execution providers', inv.executionProviders.join(', ') || '—'],
    ['Agent', inv.agentVersion],
    ['onnxruntime', inv.onnxruntimeVersion],
  ]);
}

function stateView(d) {
  const names = [...new Set([...Object.keys(d.desired?.models ?? {}), ...Object.keys(d.reported?.models ?? {})])].sort();
  const rows = names.map((name) => {
    const want = d.desired?.models[name];
    const have = d.reported?.models[name];
    return [
      name,
      want ? want.version : '—',
      want?.rollout ? h('a', { href: link(`/rollouts/${want.rollout}`) }, want.rollout) : '—',
      have ? have.version ?? '(none)' : '—',
      have ? h('span', { class: `state state-${have.state}` }, have.state) : '—',
      have?.provider ?? '—',
      have?.error ?? '',
    ];
  });
  return [
    facts([
      ['Desired generation', d.desired ? String(d.desired.generation) : '—'],
      ['Applied generation', d.reported ? String(d.reported.appliedGeneration) : '—'],
      ['In sync', d.desired ? (d.inSync ? 'yes' : 'no') : '—'],
      ['Reported', d.reportedAt ? `${dateTime(d.reportedAt)} (${ago(d.reportedAt)})` : 'never'],
    ]),
    table(['Model', 'Desired', 'Rollout', 'Serving', 'State', 'Provider', 'Error'], rows, { id: 'device-models' }),
  ];
}

// Drift levels shown with the state colours: ok green, warn amber, drift red.
const DRIFT_CLASS = { ok: 'state-healthy', warn: 'state-pending', drift: 'state-failed', insufficient: '' };
const psiText = (v) => (v === null || v === undefined ? '—' : v.toFixed(3));

/** This device's drift score for each model version it serves (docs/registry.md "Drift"). */
async function driftView(d, signal) {
  const serving = Object.entries(d.reported?.models ?? {}).filter(([, m]) => m.version);
  const reports = await Promise.allSettled(serving.map(([name, m]) => api(`/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(m.version)}/drift`, { signal })));
  const rows = [];
  reports.forEach((r, i) => {
    if (r.status !== 'fulfilled') return;
    const [name, m] = serving[i];
    const mine = r.value.devices.find((x) => x.deviceId === d.id);
    if (!r.value.hasReference) return void rows.push([name, m.version, '—', '—', '—', '—', 'no reference']);
    if (!mine) return void rows.push([name, m.version, '0', '—', '—', '—', 'no summary yet']);
    rows.push([name, m.version, String(mine.rows), psiText(mine.input), psiText(mine.confidence), psiText(mine.classes), h('span', { class: `state ${DRIFT_CLASS[mine.level] ?? ''}` }, mine.level)]);
  });
  return table(['Model', 'Version', 'Rows', 'PSI input', 'PSI confidence', 'PSI classes', 'Level'], rows, { id: 'device-drift' });
}

function eventsView(items) {
  return table(
    ['Seq', 'Kind', 'Device time', 'Data'],
    items.map((e) => [String(e.seq), e.kind, dateTime(e.ts), h('code', {}, JSON.stringify(e.data))]),
    { id: 'device-events' },
  );
}

/** Device detail: labels, presence, inventory, desired and reported state, recent events. */
export async function renderDevice(main, _ctx, id) {
  const controller = new AbortController();
  replace(main, h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', id), notice('Loading…', 'info'));
  try {
    const [d, events] = await Promise.all([
      api(`/v1/devices/${encodeURIComponent(id)}`, { signal: controller.signal }),
      api(`/v1/devices/${encodeURIComponent(id)}/events${query({ order: 'desc', limit: RECENT_EVENTS })}`, { signal: controller.signal }),
    ]);
    const drift = await driftView(d, controller.signal);
    replace(
      main,
      h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet'), ' / ', d.id),
      h('h1', { id: 'device-id' }, d.id),
      h(
        'section',
        { class: 'card', id: 'device-summary' },
        facts([
          ['Status', h('span', { class: `state state-${d.status}` }, d.status)],
          ['Presence', h('span', { id: 'device-presence', class: d.online ? 'online' : 'offline' }, d.online ? 'online' : 'offline')],
          ['Last seen', d.lastSeenAt ? `${dateTime(d.lastSeenAt)} (${ago(d.lastSeenAt)})` : 'never'],
          ['Labels', h('span', { id: 'device-labels', class: 'labels' }, labelText(d.labels).map((t) => h('span', { class: 'chip' }, t)))],
          ['Enrolled', dateTime(d.createdAt)],
        ]),
      ),
      h('section', { class: 'columns' }, h('div', { class: 'card', id: 'device-inventory' }, h('h2', {}, 'Inventory'), inventoryView(d.inventory)), h('div', { class: 'card', id: 'device-state' }, h('h2', {}, 'Desired and reported state'), stateView(d))),
      h('section', { class: 'card' }, h('h2', {}, 'Drift against the version reference'), drift),
      h('section', { class: 'card' }, h('h2', {}, `Recent events (latest ${RECENT_EVENTS}, newest first)`), eventsView(events.items)),
    );
  } catch (err) {
    if (err.name !== 'AbortError') replace(main, h('p', { class: 'crumbs' }, h('a', { href: '#/fleet' }, 'Fleet')), notice(err.message));
  }
  return () => controller.abort();
}
