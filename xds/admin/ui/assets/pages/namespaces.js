// Namespaces: every namespace with its config summary, backend and live
// traffic and error rates (from the extproc metrics, when the control plane
// has them), and a form to create or update one.
import { APIError, enc, get, put } from '../api.js';
import { h, table, notAvailable, errorBox, notice, rate, pct, enumName, announce } from '../dom.js';

const POLL_MS = 2000;

export async function render(page, el) {
  const [nsList, backends] = await Promise.all([get('/v1/admin/namespaces'), get('/v1/admin/backends')]);
  const items = nsList.namespaces || [];
  const cells = new Map(); // namespace → traffic cells
  const rows = items.map((ns) => {
    const c = { rps: h('span', null, '…'), err: h('span', null, '…'), client: h('span', null, '…'), ratio: h('span', null, '…') };
    cells.set(ns.namespace, c);
    return [
      h('a', { href: '#/namespaces/' + enc(ns.namespace) }, ns.namespace),
      enumName(ns.abstraction),
      ns.backend || '—',
      summary(ns),
      c.rps, c.err, c.client, c.ratio,
    ];
  });
  const trafficNote = h('div', { id: 'traffic-note' });
  const pollErr = h('div');
  el.append(
    h('h1', null, 'Namespaces'),
    h('p', { class: 'muted' }, `State version ${nsList.state_version}. Rates are per second over the last scrape interval, refreshed every ${POLL_MS / 1000} s.`),
    trafficNote, pollErr,
    table(null, ['Namespace', 'Abstraction', 'Backend', 'Config', { label: 'Requests/s', num: true }, { label: 'Errors/s (5xx)', num: true },
      { label: 'Rejected/s (4xx)', num: true }, { label: 'Error ratio', num: true }], rows, { id: 'namespaces', empty: 'No namespaces yet.' }),
    createForm(page, backends.backends || []),
  );
  let unavailable = false;
  page.every(POLL_MS, async () => {
    if (unavailable) return;
    await Promise.all(items.map(async (ns) => {
      const c = cells.get(ns.namespace);
      try {
        const t = await get(`/v1/admin/namespaces/${enc(ns.namespace)}/traffic`);
        const ready = t.interval_seconds > 0;
        c.rps.textContent = ready ? rate(t.requests_per_second) : '…';
        c.err.textContent = ready ? rate(t.errors_per_second) : '…';
        c.client.textContent = ready ? rate(t.client_errors_per_second) : '…';
        c.ratio.textContent = ready ? pct(t.error_ratio) : '…';
        c.rps.dataset.value = ready ? String(t.requests_per_second) : '';
      } catch (e) {
        if (e instanceof APIError && e.notFound && /not available/.test(e.message)) {
          unavailable = true;
          for (const x of cells.values()) for (const span of Object.values(x)) span.textContent = 'n/a';
          trafficNote.replaceChildren(notAvailable('Traffic rates', e.message));
          return;
        }
        throw e;
      }
    }));
  }, pollErr);
}

// summary is a one-line description of a namespace's config.
function summary(ns) {
  const parts = [];
  if (ns.access_pattern) parts.push(enumName(ns.access_pattern));
  if (ns.cache && ns.cache.ttl) parts.push('cache ' + ns.cache.ttl);
  if (ns.limits && ns.limits.rps) parts.push(ns.limits.rps + ' rps limit');
  const pii = (ns.schema && ns.schema.pii) || [];
  if (pii.length) parts.push(pii.length + ' PII field' + (pii.length > 1 ? 's' : ''));
  parts.push('policy ' + (ns.policy || 'default'));
  return parts.join(' · ');
}

// createForm PUTs a minimal namespace; the full config is PUT by
// `prism ns apply` or the API, and shown on the namespace's page.
function createForm(page, backends) {
  const out = h('div', { 'aria-live': 'polite' });
  const name = h('input', { id: 'ns-name', name: 'namespace', required: true, pattern: '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?', 'aria-describedby': 'ns-name-help' });
  const abstraction = h('select', { id: 'ns-abstraction', name: 'abstraction' },
    ['keyvalue', 'timeseries', 'graph'].map((a) => h('option', { value: a }, a)));
  const backend = h('select', { id: 'ns-backend', name: 'backend' },
    h('option', { value: 'auto' }, 'auto (the control plane chooses)'),
    backends.map((b) => h('option', { value: b.name }, b.name)));
  const form = h('form', { id: 'create-namespace', onsubmit: async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    try {
      const res = await put('/v1/admin/namespaces/' + enc(name.value), { abstraction: abstraction.value, backend: backend.value });
      out.replaceChildren(notice('ok', h('strong', null, `Namespace ${name.value} applied.`), h('pre', null, res.plan || '')));
      announce(`Namespace ${name.value} applied`);
      setTimeout(() => page.current && page.rerender(), 1500);
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  } },
  h('div', { class: 'row' },
    h('div', null, h('label', { for: 'ns-name' }, 'Name'), name),
    h('div', null, h('label', { for: 'ns-abstraction' }, 'Abstraction'), abstraction),
    h('div', null, h('label', { for: 'ns-backend' }, 'Backend'), backend),
    h('div', null, h('button', { type: 'submit' }, 'Create or update'))),
  h('p', { class: 'muted', id: 'ns-name-help' }, 'A DNS label: lower-case letters, digits and dashes. A PUT replaces the whole config, so change existing namespaces with prism ns apply; this form creates one with defaults.'));
  return h('section', { 'aria-labelledby': 'create-h' }, h('h2', { id: 'create-h' }, 'Create a namespace'), form, out);
}
