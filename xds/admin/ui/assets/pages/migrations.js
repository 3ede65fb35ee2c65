// Migrations: the phase of each namespace's move between backends, backfill
// progress, shadow-read comparisons over time, and the actions that move a
// migration on. Each action is confirmed with a dialog that states its
// consequence; promote stays disabled while the gate refuses it.
import { APIError, enc, get, post, optional } from '../api.js';
import { h, fill, table, facts, notAvailable, errorBox, notice, pct, when, badge, confirmAction, announce } from '../dom.js';
import { mismatchChart } from '../chart.js';

const PHASES = ['SHADOW_WRITE', 'BACKFILL', 'SHADOW_READ', 'PROMOTED', 'DECOMMISSIONED'];
const TERMINAL = new Set(['DECOMMISSIONED', 'ABORTED']);

// flash is the outcome of the last action, shown once on the redrawn page.
let flash = null;

export async function renderList(page, el) {
  el.append(h('h1', null, 'Migrations'));
  const res = await optional('/v1/admin/migrations');
  if (res.notAvailable) {
    el.append(notAvailable('Migrations API', res.notAvailable));
    return;
  }
  const rows = (res.migrations || []).map((st) => {
    const m = st.migration || st;
    const gate = st.gate;
    return [h('a', { href: '#/migrations/' + enc(m.namespace) }, m.namespace), m.from, m.to, phaseBadge(m.phase),
      st.stats ? pct(st.stats.mismatch_rate) : '—', gate ? (gate.can_promote ? badge('ok', 'can promote') : gate.reason) : '—'];
  });
  el.append(table(null, ['Namespace', 'From', 'To', 'Phase', 'Mismatch rate', 'Gate'], rows, { id: 'migrations', empty: 'No migrations. Start one from a namespace\'s migration page.' }));
  const nss = await get('/v1/admin/namespaces');
  el.append(h('h2', null, 'Start a migration'), h('ul', null, (nss.namespaces || []).map((ns) =>
    h('li', null, h('a', { href: '#/migrations/' + enc(ns.namespace) }, ns.namespace), ` (on ${ns.backend})`))));
}

export async function renderOne(page, el, name) {
  const out = h('div', { id: 'action-result', 'aria-live': 'polite' }, flash);
  flash = null;
  const pollErr = h('div');
  const body = h('div');
  el.append(h('p', null, h('a', { href: '#/migrations' }, '← All migrations')),
    h('h1', null, 'Migration of ', h('code', null, name)), out, pollErr, body);
  let status;
  try {
    status = await get(`/v1/admin/namespaces/${enc(name)}/migration`);
  } catch (e) {
    if (!(e instanceof APIError && e.notFound)) throw e;
    if (/no admin API/.test(e.message)) {
      body.append(notAvailable('Migrations API', e.message));
      return;
    }
    await startForm(page, body, out, name, e.message);
    return;
  }
  draw(page, body, out, name, status);
  // Counters and backfill progress change on their own: refresh them.
  let shownPhase = status.migration && status.migration.phase;
  page.every(3000, async () => {
    const st = await get(`/v1/admin/namespaces/${enc(name)}/migration`);
    if (!page.current) return;
    const focusedId = document.activeElement && document.activeElement.id;
    draw(page, body, out, name, st);
    if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
    if (st.migration && st.migration.phase !== shownPhase) {
      shownPhase = st.migration.phase;
      announce('Migration phase is now ' + shownPhase);
    }
  }, pollErr);
}

async function startForm(page, body, out, name, why) {
  const [nsRes, backends] = await Promise.all([get('/v1/admin/namespaces/' + enc(name)), get('/v1/admin/backends')]);
  const from = nsRes.namespace.backend;
  const choices = (backends.backends || []).filter((b) => b.name !== from);
  const to = h('select', { id: 'mig-to', name: 'to' }, choices.map((b) => h('option', { value: b.name }, b.name)));
  const num = (id, placeholder, step) => h('input', { id, type: 'number', min: 0, step, placeholder, inputmode: 'decimal' });
  const readPct = num('mig-read-percent', '10', 'any');
  const threshold = num('mig-threshold', '0.001', 'any');
  const minSample = num('mig-min-sample', '1000', '1');
  body.append(
    h('p', null, why),
    h('form', { id: 'start-migration', onsubmit: async (ev) => {
      ev.preventDefault();
      const target = to.value;
      const ok = await confirmAction('Start migration?',
        `Every write to ${name} will also be written to ${target} (shadow writes). Reads still come from ${from}, which stays the primary backend until you promote. You can abort at any time.`,
        'Start migration');
      if (!ok) return;
      const body = { action: 'start', to: target };
      if (readPct.value !== '') body.read_percent = Number(readPct.value);
      if (threshold.value !== '') body.mismatch_threshold = Number(threshold.value);
      if (minSample.value !== '') body.min_sample = Number(minSample.value);
      await act(page, out, name, body, `Migration of ${name} to ${target} started`);
    } },
    h('div', { class: 'row' },
      h('div', null, h('label', { for: 'mig-to' }, `Move ${name} from ${from} to`), to),
      h('div', null, h('label', { for: 'mig-read-percent' }, 'Shadow-read percent'), readPct),
      h('div', null, h('label', { for: 'mig-threshold' }, 'Mismatch threshold'), threshold),
      h('div', null, h('label', { for: 'mig-min-sample' }, 'Minimum compared reads'), minSample),
      h('div', null, h('button', { type: 'submit', disabled: choices.length === 0 }, 'Start migration'))),
    h('p', { class: 'muted' }, 'Empty fields take the control plane\'s defaults (shown greyed). Promotion needs the minimum number of compared reads with a mismatch rate below the threshold, and a finished backfill.')),
  );
}

// draw renders a migration status.
function draw(page, body, out, name, st) {
  const m = st.migration || {};
  const stats = st.stats || {};
  const gate = st.gate || { can_promote: false, reason: 'the control plane did not report a gate' };
  const bf = st.backfill || {};
  const phase = m.phase;
  const terminal = TERMINAL.has(phase);
  const nextLabel = { SHADOW_WRITE: 'Advance to backfill', BACKFILL: 'Advance to shadow read', PROMOTED: `Decommission ${m.from}` }[phase];
  const consequence = {
    SHADOW_WRITE: `The backfill starts: every key of ${name} is copied from ${m.from} to ${m.to} in the background (a key already newer in ${m.to} is kept). Reads still come from ${m.from}.`,
    BACKFILL: `Shadow reads start: ${m.read_percent ?? '?'} % of reads are also read from ${m.to} and compared with ${m.from}. Clients still get ${m.from}'s answer.`,
    PROMOTED: `${m.from} stops receiving writes and is no longer part of ${name}. This cannot be undone.`,
  }[phase];
  const canPromote = phase === 'SHADOW_READ' && gate.can_promote;
  const gateText = phase === 'SHADOW_READ' || !terminal && phase !== 'PROMOTED' ? gate.reason || '' : '';

  const buttons = h('div', { class: 'actions' },
    h('button', { type: 'button', id: 'advance', disabled: !nextLabel, onclick: async () => {
      if (await confirmAction(nextLabel + '?', consequence, nextLabel)) await act(page, out, name, { action: 'advance' }, `${name}: advanced`);
    } }, nextLabel || 'Advance'),
    h('button', { type: 'button', id: 'promote', disabled: !canPromote, 'aria-describedby': 'gate-reason', onclick: async () => {
      if (await confirmAction(`Promote ${m.to}?`,
        `${m.to} becomes the primary backend of ${name}: all reads and writes go to it. ${m.from} keeps its data but receives no reads; decommission it afterwards.`, 'Promote', true)) {
        await act(page, out, name, { action: 'promote', force: false }, `${name}: promoted to ${m.to}`);
      }
    } }, 'Promote'),
    h('button', { type: 'button', id: 'abort', class: 'danger', disabled: terminal || phase === 'PROMOTED', onclick: async () => {
      if (await confirmAction('Abort migration?',
        `Shadow writes and reads to ${m.to} stop and ${m.from} stays the only backend of ${name}. Data already copied to ${m.to} stays there; a new migration starts over.`, 'Abort migration', true)) {
        await act(page, out, name, { action: 'abort' }, `${name}: migration aborted`);
      }
    } }, 'Abort'),
    h('button', { type: 'button', id: 'reset-compare', class: 'secondary', disabled: phase !== 'SHADOW_READ', onclick: async () => {
      if (await confirmAction('Reset comparisons?',
        `Start a new comparison window (after repairing ${m.to}): the reads compared so far no longer count towards the promotion gate, which needs ${m.min_sample ?? '?'} new compared reads.`, 'Reset comparisons')) {
        await act(page, out, name, { action: 'reset_compare' }, `${name}: comparisons reset`);
      }
    } }, 'Reset comparisons'));

  const steps = h('ol', { class: 'phases', 'aria-label': 'Phases' }, PHASES.map((p, i) => {
    const cur = PHASES.indexOf(phase);
    const li = h('li', { class: cur > i ? 'done' : null, 'aria-current': p === phase ? 'step' : null }, p.toLowerCase().replace('_', ' '));
    return li;
  }), phase === 'ABORTED' ? h('li', { class: 'aborted', 'aria-current': 'step' }, 'aborted') : null);

  fill(body,
    facts([
      ['From', m.from], ['To', m.to], ['Phase', phaseBadge(phase)], ['Migration id', h('code', null, m.id || '—')],
      ['Read percent', (m.read_percent ?? '—') + ' %'], ['Mismatch threshold', pct(m.mismatch_threshold)],
      ['Minimum sample', m.min_sample ?? '—'], ['Compare epoch', m.compare_epoch ?? 0],
      ...(Number(m.handover_floor) > 0 ? [['Handover floor', h('code', null, String(m.handover_floor))]] : []),
    ]),
    steps,
    h('h2', null, 'Actions'),
    buttons,
    h('p', { id: 'gate-reason', class: canPromote ? 'notice ok' : 'notice warn' },
      canPromote ? 'The gate allows promotion.' : 'Promote is disabled: ' + (gateText || `the migration is ${String(phase).toLowerCase()}`)),
    h('h2', null, 'Backfill'),
    backfill(bf, st.abstraction === 'timeseries' ? 'events' : 'keys'),
    h('h2', null, 'Shadow traffic'),
    facts([
      ['Shadow writes', `${stats.shadow_writes ?? 0} (${stats.shadow_write_failures ?? 0} failed)`],
      ['Reads compared', stats.reads_compared ?? 0],
      ['Mismatches', stats.mismatches ?? 0],
      ['Mismatch rate', h('span', { id: 'mismatch-rate' }, pct(stats.mismatch_rate))],
    ]),
    mismatchChart(st.series, m.mismatch_threshold || 0),
    keyList(st.abstraction === 'timeseries' ? 'Series whose shadow query mismatched (sample)' : 'Keys whose shadow read mismatched (sample)', stats.mismatch_keys),
    keyList(st.abstraction === 'timeseries' ? 'Series whose shadow copy failed (sample)' : 'Keys whose shadow write failed (sample)', stats.failed_keys),
    nodesTable(stats.nodes),
    h('h2', null, 'History'),
    table(null, ['Phase', 'At'], (st.history || []).map((x) => [x.phase, when(x.at)]), { empty: 'No history.' }),
  );
}

function backfill(bf, unit) {
  if (!bf.state) return h('p', { class: 'muted' }, 'No backfill reported.');
  const total = Number(bf.keys_total) || 0, done = Number(bf.keys_done) || 0;
  const skipped = unit === 'events' ? 'Skipped (already in target)' : 'Skipped (newer in target)';
  return h('div', null,
    h('label', { for: 'backfill-progress' }, `Backfill ${bf.state}: ${done} of ${total || '?'} ${unit}`),
    h('progress', { id: 'backfill-progress', max: total || 1, value: total ? done : (bf.state === 'done' ? 1 : 0) }),
    facts([['Copied', bf.copied ?? 0], [skipped, bf.skipped_newer ?? 0], ['Rate', bf.rate ? `${Number(bf.rate).toFixed(1)} ${unit}/s` : '—'],
      ['Checkpoint', bf.checkpoint ? h('code', null, bf.checkpoint) : '—'], ['Updated', when(bf.updated_at)]]));
}

function keyList(title, keys) {
  if (!keys || !keys.length) return null;
  return h('div', null, h('h3', null, title), h('ul', null, keys.map((k) => h('li', null, h('code', null, k)))));
}

function nodesTable(nodes) {
  const entries = Object.entries(nodes || {});
  if (!entries.length) return null;
  const cols = [...new Set(entries.flatMap(([, v]) => Object.keys(v || {})))].filter((c) => typeof entries[0][1][c] !== 'object');
  return h('div', null, h('h3', null, 'Per extproc node'),
    table(null, ['Node', ...cols.map((c) => ({ label: c.replaceAll('_', ' '), num: true }))],
      entries.map(([id, v]) => [h('code', null, id), ...cols.map((c) => String(v[c] ?? '—'))])));
}

function phaseBadge(phase) {
  const kind = phase === 'ABORTED' ? 'bad' : phase === 'PROMOTED' || phase === 'DECOMMISSIONED' ? 'ok' : 'warn';
  return badge(kind, phase || '—');
}

// act POSTs one action; the answer (or the refusal, e.g. a 409 from the
// gate) is shown and the page redrawn.
async function act(page, out, name, body, done) {
  try {
    await post(`/v1/admin/namespaces/${enc(name)}/migration`, body);
    announce(done);
    if (page.current) {
      flash = notice('ok', done);
      page.rerender();
    }
  } catch (e) {
    out.replaceChildren(errorBox(e));
    announce('Refused: ' + e.message);
  }
}
