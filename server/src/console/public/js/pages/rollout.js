/* global setTimeout, clearTimeout, AbortController */
import { api, openStream, query } from '../api.js';
import { h, replace, facts, table, notice } from '../dom.js';
import { ago, dateTime } from '../format.js';
import { readEvents } from '../sse.js';
import { ROLLOUT_COMMANDS, FINAL_STATES, roleAllows } from '../roles.js';
import { failureReasons, stageView } from './funnel.js';

const RECONNECT_MS = 2000;
/** While devices are in flight, failure reasons and rollout events are re-read this often. */
const EXTRAS_REFRESH_MS = 3000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}

/** Rollout detail: state, commands by role, and every stage's progress and funnel, kept live by the server's stream. */
export async function renderRollout(main, ctx, id) {
  const controller = new AbortController();
  const { signal } = controller;
  const role = ctx.me.role;
  let view = null;
  let reasons = null;
  let events = [];
  let pendingConfirm = null;
  let busy = false;

  const title = h('h1', { id: 'rollout-id' }, id);
  const live = h('span', { id: 'live', class: 'live connecting' }, 'connecting');
  const header = h('section', { class: 'card', id: 'rollout-header' });
  const commandStatus = h('div', { id: 'command-status' });
  const confirmBar = h('div', { id: 'confirm', class: 'confirm', hidden: true });
  const buttons = new Map(
    ROLLOUT_COMMANDS.map((c) => [
      c.name,
      h('button', { type: 'button', id: `cmd-${c.name}`, class: `command command-${c.name}`, dataset: { command: c.name }, on: { click: () => onCommand(c) } }, c.label),
    ]),
  );
  const roleNote = roleAllows(role, 'operator') ? null : h('p', { class: 'muted', id: 'role-note' }, `Signed in as ${role}: rollout commands need the operator role.`);
  const stages = h('div', { id: 'stages' });
  const eventList = h('div', { id: 'rollout-events' });

  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/rollouts' }, 'Rollouts'), ' / ', id),
    h('div', { class: 'title-row' }, title, live),
    header,
    h('section', { class: 'card commands', id: 'commands' }, h('div', { class: 'buttons' }, [...buttons.values()]), confirmBar, roleNote, commandStatus),
    h('h2', {}, 'Stages'),
    stages,
    h('section', { class: 'card' }, h('h2', {}, 'Rollout events'), eventList),
  );

  function setLive(state) {
    live.className = `live ${state}`;
    live.textContent = state;
  }

  function renderButtons() {
    for (const c of ROLLOUT_COMMANDS) {
      const b = buttons.get(c.name);
      const allowedRole = roleAllows(role, c.role);
      const allowedState = view !== null && c.states.includes(view.state);
      b.disabled = busy || !allowedRole || !allowedState;
      b.title = !allowedRole ? `Needs the ${c.role} role (you are ${role})` : !allowedState ? `Not possible while ${view?.state ?? 'loading'}` : '';
    }
  }

  function renderView() {
    if (!view) return;
    const stageCount = view.spec?.stages?.length ?? 0;
    replace(
      header,
      facts([
        ['Name', view.name ?? '—'],
        ['Release', `${view.model}@${view.version}`],
        ['State', h('span', { id: 'rollout-state', class: `state state-${view.state}` }, view.state)],
        ['Reason', h('span', { id: 'rollout-reason' }, view.reason ?? '—')],
        ['Stage', h('span', { id: 'rollout-stage' }, `${view.stage + 1} of ${stageCount}`)],
        ['Devices', h('span', { id: 'rollout-counts' }, `${view.counts.succeeded ?? 0} succeeded of ${view.targetCount}; ${view.counts.notified ?? 0} in flight, ${view.counts.pending ?? 0} pending, ${(view.counts.failed ?? 0) + (view.counts.rejected ?? 0) + (view.counts.timedOut ?? 0)} failed`)],
        ['Priority', String(view.priority)],
        ['Created', `${dateTime(view.createdAt)} by ${view.createdBy}`],
        ['Updated', ago(view.updatedAt)],
        ['Finished', view.finishedAt ? dateTime(view.finishedAt) : undefined],
      ]),
    );
    replace(stages, (view.funnel ?? []).map((f) => stageView(view, f, reasons)));
    renderButtons();
  }

  function renderEvents() {
    const latest = events.slice(-20).reverse();
    replace(eventList, table(['When', 'Stage', 'Event', 'Details'], latest.map((e) => [dateTime(e.ts), e.stage === null ? '—' : String(e.stage + 1), e.kind, h('code', {}, e.details === null ? '' : JSON.stringify(e.details))])));
  }

  // Failure reasons and events are read around the stream: one refresh at a time, another queued.
  let refreshing = false;
  let again = false;
  let timer = null;
  async function refreshExtras() {
    if (!view || signal.aborted) return;
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      const v = view;
      const [r, ev] = await Promise.all([
        failureReasons(v, signal),
        api(`/v1/rollouts/${encodeURIComponent(id)}/events${query({ afterId: events.at(-1)?.id, limit: 200 })}`, { signal }),
      ]);
      reasons = r;
      events = events.concat(ev.items).slice(-200);
      renderView();
      renderEvents();
    } catch (err) {
      if (err.name !== 'AbortError') replace(commandStatus, notice(err.message));
    } finally {
      refreshing = false;
    }
    if (again) {
      again = false;
      return refreshExtras();
    }
    clearTimeout(timer);
    if (!signal.aborted && view && !FINAL_STATES.has(view.state) && (view.counts.notified ?? 0) > 0) timer = setTimeout(refreshExtras, EXTRAS_REFRESH_MS);
  }

  function apply(next, { fromCommand = false } = {}) {
    // A command's answer and the stream race. A view with an older updatedAt was read before the one
    // shown (a later read never has an older one), so it is stale. A command's answer on a tie is
    // dropped too: the stream sends every state change, that one included.
    if (view && (next.updatedAt < view.updatedAt || (fromCommand && next.updatedAt === view.updatedAt))) return;
    view = next;
    renderView();
    refreshExtras();
  }

  async function onCommand(c) {
    if (c.confirm && pendingConfirm !== c.name) {
      pendingConfirm = c.name;
      replace(
        confirmBar,
        h('span', {}, c.confirm),
        h('button', { type: 'button', id: 'confirm-yes', class: `command-${c.name}`, on: { click: () => onCommand(c) } }, `Yes, ${c.name}`),
        h('button', { type: 'button', id: 'confirm-no', on: { click: () => ((pendingConfirm = null), (confirmBar.hidden = true)) } }, 'Keep it'),
      );
      confirmBar.hidden = false;
      return;
    }
    pendingConfirm = null;
    confirmBar.hidden = true;
    busy = true;
    renderButtons();
    replace(commandStatus, notice(`${c.label}…`, 'info'));
    try {
      const next = await api(`/v1/rollouts/${encodeURIComponent(id)}/${c.name}`, { method: 'POST', body: {}, signal });
      replace(commandStatus, notice(`${c.label}: done, the rollout is ${next.state}.`, 'ok'));
      busy = false;
      apply(next, { fromCommand: true });
      renderButtons();
    } catch (err) {
      busy = false;
      if (err.name !== 'AbortError') replace(commandStatus, notice(`${c.label} refused: ${err.code}: ${err.message}`));
      renderButtons();
    }
  }

  async function follow() {
    while (!signal.aborted) {
      let ended = false;
      try {
        const res = await openStream(`/v1/rollouts/${encodeURIComponent(id)}/stream`, signal);
        setLive('live');
        await readEvents(res.body, (e) => {
          if (e.event === 'progress') apply(JSON.parse(e.data));
          else if (e.event === 'end') ended = true;
        });
      } catch (err) {
        if (signal.aborted) return;
        if (err.status === 404) {
          replace(main, h('p', { class: 'crumbs' }, h('a', { href: '#/rollouts' }, 'Rollouts')), notice(err.message));
          return;
        }
        if (err.status === 401) return;
      }
      if (signal.aborted) return;
      if (ended) {
        setLive('ended');
        return;
      }
      // The server closed the stream without a final state (restart, proxy): follow it again.
      setLive('reconnecting');
      await sleep(RECONNECT_MS, signal);
    }
  }

  renderButtons();
  follow();
  return () => {
    controller.abort();
    clearTimeout(timer);
  };
}
