/* global AbortController */
import { api, query } from '../api.js';
import { h, replace, table, notice } from '../dom.js';
import { ago } from '../format.js';
import { link } from '../router.js';

const STATES = ['', 'running', 'awaitingApproval', 'paused', 'completed', 'cancelled', 'reverted', 'preempted'];

function row(r) {
  const stages = r.spec?.stages?.length ?? 0;
  return [
    h('a', { href: link(`/rollouts/${r.id}`), class: 'rollout-link' }, r.id),
    r.name ?? '',
    `${r.model}@${r.version}`,
    h('span', { class: `state state-${r.state}` }, r.state),
    `${r.stage + 1} / ${stages}`,
    `${r.counts.succeeded ?? 0} / ${r.targetCount}`,
    `${r.createdBy} · ${ago(r.createdAt)}`,
  ];
}

/** Rollout list, newest first, with a state filter. */
export async function renderRollouts(main) {
  const controller = new AbortController();
  const state = h('select', { id: 'filter-state', name: 'state' }, STATES.map((s) => h('option', { value: s }, s || 'any state')));
  const list = h('div', { id: 'rollout-table' }, notice('Loading…', 'info'));
  const more = h('button', { type: 'button', id: 'load-more', hidden: true }, 'Load more');
  let cursor = null;
  let items = [];

  async function load(append) {
    try {
      const page = await api(`/v1/rollouts${query({ state: state.value || undefined, cursor: append ? cursor : undefined, limit: 50 })}`, { signal: controller.signal });
      items = append ? items.concat(page.items) : page.items;
      cursor = page.nextCursor;
      replace(list, table(['Rollout', 'Name', 'Release', 'State', 'Stage', 'Succeeded', 'Created'], items.map(row), { id: 'rollouts' }));
      more.hidden = !cursor;
    } catch (err) {
      if (err.name !== 'AbortError') replace(list, notice(err.message));
    }
  }
  state.addEventListener('change', () => load(false));
  more.addEventListener('click', () => load(true));
  replace(main, h('h1', {}, 'Rollouts'), h('section', { class: 'card' }, h('div', { class: 'filters' }, state), list, more));
  await load(false);
  return () => controller.abort();
}
