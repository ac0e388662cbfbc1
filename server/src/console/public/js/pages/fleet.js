/* global AbortController */
import { api, query } from '../api.js';
import { h, replace, table, notice } from '../dom.js';
import { ago, labelText } from '../format.js';
import { link } from '../router.js';

function stat(id, label, value) {
  return h('div', { class: 'stat', id }, h('span', { class: 'stat-value' }, String(value)), h('span', { class: 'stat-label' }, label));
}

function summaryView(s) {
  const versionRows = s.modelVersions.map((v) => [v.model, v.version ?? '(none serving)', String(v.devices)]);
  return [
    h(
      'section',
      { class: 'stats', id: 'fleet-counts' },
      stat('count-online', 'online', s.online),
      stat('count-offline', 'offline', s.offline),
      stat('count-pending', 'pending', s.byStatus.pending ?? 0),
      stat('count-total', 'devices in all', s.total),
    ),
    h(
      'section',
      { class: 'columns' },
      h('div', { class: 'card' }, h('h2', {}, 'Model versions'), table(['Model', 'Version', 'Devices'], versionRows, { id: 'model-versions' })),
      h('div', { class: 'card' }, h('h2', {}, 'Agent versions'), table(['Agent', 'Devices'], s.agentVersions.map((v) => [v.version, String(v.devices)]), { id: 'agent-versions' })),
    ),
  ];
}

function modelsCell(d) {
  const models = Object.entries(d.reported?.models ?? {});
  if (!models.length) return '—';
  return models.map(([name, m]) => h('div', {}, `${name}@${m.version ?? '—'} `, h('span', { class: `state state-${m.state}` }, m.state)));
}

function deviceRow(d) {
  return [
    h('a', { href: link(`/devices/${d.id}`), class: 'device-link' }, d.id),
    h('span', { class: `state state-${d.status}` }, d.status),
    h('span', { class: d.online ? 'online' : 'offline' }, d.online ? 'online' : `offline · ${ago(d.lastSeenAt)}`),
    h('span', { class: 'labels' }, labelText(d.labels).map((t) => h('span', { class: 'chip' }, t))),
    modelsCell(d),
    d.inventory?.agentVersion ?? '—',
    d.desired ? (d.inSync ? 'yes' : 'no') : '—',
  ];
}

/** Fleet overview: counts, versions per model, and the device table with filters. */
export async function renderFleet(main) {
  const controller = new AbortController();
  const summary = h('div', { id: 'fleet-summary' }, notice('Loading…', 'info'));
  const status = h('select', { id: 'filter-status', name: 'status' }, ['', 'accepted', 'pending', 'preauthorized', 'rejected', 'revoked'].map((s) => h('option', { value: s }, s || 'any status')));
  const online = h('select', { id: 'filter-online', name: 'online' }, [['', 'online or offline'], ['true', 'online'], ['false', 'offline']].map(([v, t]) => h('option', { value: v }, t)));
  const label = h('input', { id: 'filter-label', name: 'label', placeholder: 'label key=value', size: 22 });
  const devices = h('div', { id: 'device-table' });
  const more = h('button', { type: 'button', id: 'load-more', hidden: true }, 'Load more');
  let cursor = null;
  let rows = [];

  async function loadDevices(append) {
    const q = query({
      status: status.value || undefined,
      online: online.value || undefined,
      label: label.value.trim() || undefined,
      cursor: append ? cursor : undefined,
      limit: 100,
    });
    try {
      const page = await api(`/v1/devices${q}`, { signal: controller.signal });
      rows = append ? rows.concat(page.items) : page.items;
      cursor = page.nextCursor;
      replace(devices, table(['Device', 'Status', 'Presence', 'Labels', 'Models', 'Agent', 'In sync'], rows.map(deviceRow), { id: 'devices' }));
      more.hidden = !cursor;
    } catch (err) {
      if (err.name !== 'AbortError') replace(devices, notice(err.message));
    }
  }

  const filters = h(
    'form',
    { class: 'filters', id: 'device-filters', on: { submit: (e) => (e.preventDefault(), loadDevices(false)) } },
    status,
    online,
    label,
    h('button', { type: 'submit' }, 'Filter'),
  );
  status.addEventListener('change', () => loadDevices(false));
  online.addEventListener('change', () => loadDevices(false));
  more.addEventListener('click', () => loadDevices(true));

  replace(main, h('h1', {}, 'Fleet'), summary, h('section', { class: 'card' }, h('h2', {}, 'Devices'), filters, devices, more));
  const [s] = await Promise.allSettled([api('/v1/fleet/summary', { signal: controller.signal }), loadDevices(false)]);
  if (s.status === 'fulfilled') replace(summary, summaryView(s.value));
  else if (s.reason?.name !== 'AbortError') replace(summary, notice(s.reason.message));
  return () => controller.abort();
}
