/* global document, Node */
// The only way the console builds DOM: text goes in as text nodes, never as markup.

const MARKUP_PROPS = new Set(['innerHTML', 'outerHTML', 'srcdoc', 'style']);

/**
 * h('a', { class: 'x', href: '#/fleet', on: { click } }, 'text', child, [more]).
 * Strings and numbers become text nodes; null, undefined and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const k of Object.keys(props ?? {})) if (MARKUP_PROPS.has(k)) throw new TypeError(`h(): ${k} is refused; pass text or nodes`);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [type, fn] of Object.entries(v)) node.addEventListener(type, fn);
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && typeof node[k] !== 'function' && k !== 'list' && k !== 'form') node[k] = v;
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A two-column definition list from [label, value] pairs; values may be nodes. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

/** A table from column headers and rows of cells (strings or nodes). */
export function table(headers, rows, props = {}) {
  return h(
    'table',
    props,
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.length ? rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))) : h('tr', {}, h('td', { colSpan: headers.length, class: 'empty' }, 'Nothing to show'))),
  );
}

/** A message line for errors and notices. */
export function notice(text, kind = 'error') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
