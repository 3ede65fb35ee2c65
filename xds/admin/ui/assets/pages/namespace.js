// One namespace: its routes, backend, policy, PII schema (paths and classes,
// never values), access lists, live traffic, migration and the recent audit
// records of accesses to its PII fields.
import { enc, get, optional } from '../api.js';
import { h, table, facts, notAvailable, rate, pct, enumName, when, badge } from '../dom.js';

const routesOf = {
  KEYVALUE: (ns) => [
    ['PUT', `/v1/kv/${ns}/{key}`, 'write one key'], ['GET', `/v1/kv/${ns}/{key}`, 'read one key'],
    ['DELETE', `/v1/kv/${ns}/{key}`, 'delete one key'], ['GET', `/v1/kv/${ns}?prefix=&start=&end=`, 'scan'],
    ['POST', `/v1/kv/${ns}/_mget`, 'read many keys'], ['POST', `/v1/kv/${ns}/_batch`, 'all-or-nothing batch'],
  ],
  TIMESERIES: (ns) => [
    ['POST', `/v1/ts/${ns}/events`, 'append events'], ['GET', `/v1/ts/${ns}/events?series=`, 'query by time'],
    ['GET', `/v1/ts/${ns}/tail?series=&after=`, 'long-poll new events'],
  ],
  GRAPH: (ns) => [
    ['PUT / GET / DELETE', `/v1/graph/${ns}/nodes/{id}`, 'nodes'], ['PUT / DELETE', `/v1/graph/${ns}/edges`, 'edges'],
    ['GET', `/v1/graph/${ns}/nodes/{id}/edges`, 'a node\'s edges'], ['POST', `/v1/graph/${ns}/traverse`, 'breadth-first traversal'],
  ],
};

export async function render(page, el, name) {
  const res = await get('/v1/admin/namespaces/' + enc(name));
  const ns = res.namespace;
  const [migration, audit] = await Promise.all([
    optional(`/v1/admin/namespaces/${enc(name)}/migration`),
    optional(`/v1/admin/audit?namespace=${enc(name)}&limit=20`),
  ]);
  const policy = ns.policy || 'default';
  const access = ns.access || {};
  const pii = (ns.schema && ns.schema.pii) || [];
  const traffic = h('dl', { class: 'facts', id: 'traffic' }, h('dt', null, 'Requests/s'), h('dd', null, '…'));
  const trafficErr = h('div');

  el.append(
    h('p', null, h('a', { href: '#/namespaces' }, '← All namespaces')),
    h('h1', null, 'Namespace ', h('code', null, name)),
    facts([
      ['Abstraction', enumName(ns.abstraction)],
      ['Backend', ns.backend || '—'],
      ['Policy', h('a', { href: '#/policies/' + enc(policy) }, policy)],
      ['Access pattern', enumName(ns.access_pattern)],
      ns.cache && ['Cache', `ttl ${ns.cache.ttl || '—'}`],
      ns.limits && ['Limits', Object.entries(ns.limits).map(([k, v]) => `${k} ${v}`).join(', ')],
      ['Migration', migrationFact(name, migration)],
    ]),
    h('h2', null, 'Traffic'), trafficErr, traffic,
    h('h2', null, 'Routes'),
    table(null, ['Method', 'Path', 'Operation'], (routesOf[ns.abstraction] || (() => []))(name).map(([m, p, d]) => [m, h('code', null, p), d]), { rowHeader: false }),
    h('p', { class: 'muted' }, `Envoy matches these routes with route metadata prism.namespace=${name}; extproc serves them from backend ${ns.backend}.`),
    h('h2', null, 'PII schema'),
    table(null, ['Field path', 'Class', 'Encrypted at rest', 'Audit every access'],
      pii.map((f) => [h('code', null, f.path), enumName(f.class, 'PII_CLASS_'), f.encrypt_at_rest === false ? 'no' : 'yes', f.access_audit ? 'yes' : 'no']),
      { id: 'pii', empty: 'No PII fields: values are stored as given.' }),
    h('h2', null, 'Access'),
    facts([
      ['Owners', list(access.owners)],
      ['Readers', list(access.readers)],
      ['Identity required', access.require_identity ? 'yes' : 'no'],
    ]),
    h('h2', null, 'Recent audit records'),
    auditTable(audit),
    h('details', null, h('summary', null, 'Full config (JSON)'), h('pre', null, JSON.stringify(ns, null, 2))),
  );

  page.every(2000, async () => {
    const t = await optional(`/v1/admin/namespaces/${enc(name)}/traffic`);
    if (t.notAvailable) {
      traffic.replaceChildren();
      trafficErr.replaceChildren(notAvailable('Traffic rates', t.notAvailable));
      return;
    }
    const ready = t.interval_seconds > 0;
    const v = (x) => (ready ? x : '…');
    traffic.replaceChildren(
      h('dt', null, 'Requests/s'), h('dd', { id: 'rps' }, v(rate(t.requests_per_second))),
      h('dt', null, 'Errors/s (5xx)'), h('dd', null, v(rate(t.errors_per_second))),
      h('dt', null, 'Rejected/s (4xx)'), h('dd', null, v(rate(t.client_errors_per_second))),
      h('dt', null, 'Error ratio'), h('dd', null, v(pct(t.error_ratio))),
      h('dt', null, 'Since start'), h('dd', null, `${t.totals.requests} requests, ${t.totals.errors} errors, ${t.totals.client_errors} rejected`),
    );
  }, trafficErr);
}

function list(xs) {
  if (!xs || !xs.length) return h('span', { class: 'muted' }, 'none');
  return h('ul', null, xs.map((x) => h('li', null, h('code', null, x))));
}

function migrationFact(name, m) {
  if (m.notAvailable) {
    return /does not exist|no migration/i.test(m.notAvailable)
      ? h('span', null, 'none — ', h('a', { href: '#/migrations/' + enc(name) }, 'start one'))
      : h('span', { class: 'muted' }, 'not available');
  }
  const mig = m.migration || {};
  return h('a', { href: '#/migrations/' + enc(name) }, `${mig.phase || '—'}: ${mig.from} → ${mig.to}`);
}

// auditTable shows who accessed which PII fields and what the policy
// decided. Records carry field names only; values never reach the log.
function auditTable(a) {
  if (a.notAvailable) return notAvailable('Audit log', a.notAvailable);
  const recs = a.records || [];
  return table(null, ['Time', 'Subject', 'Operation', 'Key', 'Fields', 'Decision', 'Request'],
    recs.map((r) => [when(r.time), r.subject ? h('code', null, r.subject) : h('span', { class: 'muted' }, 'anonymous'), r.operation,
      r.key ? h('code', null, r.key) : '—', (r.fields || []).join(', ') || '—',
      r.decision === 'deny' ? badge('bad', 'deny') : r.decision, h('code', null, r.request_id)]),
    { id: 'audit', empty: 'No audited accesses yet.', rowHeader: false });
}
