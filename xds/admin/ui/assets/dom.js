// Small DOM helpers. Every value from the API goes in as text (never as
// HTML), so a stored name or policy source cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

// fill replaces el's children, leaving out null and false (which
// replaceChildren would print).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// table builds a table from column headers and rows of cells.
export function table(caption, headers, rows, opts = {}) {
  return h('table', { class: opts.class, id: opts.id },
    caption ? h('caption', null, caption) : null,
    h('thead', null, h('tr', null, headers.map((c) => h('th', { scope: 'col', class: numeric(c) ? 'num' : null }, label(c))))),
    h('tbody', null, rows.length ? rows.map((r) => h('tr', null, r.map((cell, i) =>
      i === 0 && opts.rowHeader !== false ? h('th', { scope: 'row' }, cell) : h('td', { class: numeric(headers[i]) ? 'num' : null }, cell))))
      : h('tr', null, h('td', { colspan: headers.length, class: 'muted' }, opts.empty || 'none'))));
}
const label = (c) => (typeof c === 'object' && c && !(c instanceof Node) ? c.label : c);
const numeric = (c) => typeof c === 'object' && c && !(c instanceof Node) && c.num;

export function notice(kind, ...children) {
  return h('div', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : null }, ...children);
}

// notAvailable is what a page shows for a part of the API this control
// plane does not have (the API answered 404).
export function notAvailable(what, message) {
  return notice('warn', h('strong', null, what + ': not available. '), message || '');
}

export function errorBox(e) {
  const where = e && e.requestID ? ` (request ${e.requestID})` : '';
  return notice('error', h('strong', null, (e.code || 'ERROR') + ': '),
    String(e.message).includes('\n') ? h('pre', null, e.message) : e.message, where,
    e.details && e.details.length ? h('pre', null, e.details.join('\n')) : null);
}

export function badge(kind, text) { return h('span', { class: 'badge ' + kind }, text); }

export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function rate(n) {
  if (n === undefined || n === null) return '—';
  if (n === 0) return '0';
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

export function pct(x) {
  if (x === undefined || x === null || Number.isNaN(x)) return '—';
  return (x * 100).toFixed(x < 0.01 && x > 0 ? 3 : 2) + ' %';
}

export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '—';
  return h('time', { datetime: d.toISOString() }, d.toLocaleString());
}

// enumName turns a proto enum name into what operators write:
// PII_CLASS_EMAIL → email, KEYVALUE → keyvalue.
export function enumName(v, prefix) {
  if (v === undefined || v === null || v === '') return '—';
  let t = String(v);
  if (prefix && t.startsWith(prefix)) t = t.slice(prefix.length);
  return t.toLowerCase();
}

export function announce(msg) {
  const el = document.getElementById('announce');
  el.textContent = '';
  setTimeout(() => { el.textContent = msg; }, 50);
}

// confirmAction opens the confirmation dialog and resolves true when the
// operator confirms. Cancel is focused first so Enter does not act by accident.
export function confirmAction(title, text, okLabel, danger) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  ok.textContent = okLabel;
  ok.className = danger ? 'danger' : '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
