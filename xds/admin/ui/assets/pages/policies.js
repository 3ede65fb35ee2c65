// Policies: the Rego in force, its version, which nodes rejected a pushed
// version (NACK) and why, an editor that pushes a change (the control plane
// compiles it and runs its tests first), and a box that evaluates a policy
// for a chosen subject and operation before anything is pushed.
import { APIError, enc, get, put, post, optional } from '../api.js';
import { h, fill, table, facts, notAvailable, errorBox, notice, badge, when, announce } from '../dom.js';

const POLICY_TYPE = 'type.googleapis.com/prism.config.v1.Policy';
const OPERATIONS = ['get', 'put', 'delete', 'scan', 'mget', 'batch', 'append', 'query', 'tail',
  'get_node', 'put_node', 'delete_node', 'put_edge', 'delete_edge', 'get_edges', 'traverse'];

const TEMPLATE = `package prism.authz

import rego.v1

default decision := {"allow": false, "role": "none", "reason": "denied"}
`;

export async function render(page, el, selected) {
  const [list, nss, nodes] = await Promise.all([optional('/v1/admin/policies'), get('/v1/admin/namespaces'), get('/v1/admin/nodes')]);
  const names = list.notAvailable ? [] : (list.policies || []).map((p) => p.name);
  const name = selected || names[0] || 'default';
  el.append(h('h1', null, 'Policies'));
  if (list.notAvailable) el.append(notAvailable('Policies API', list.notAvailable + ' The built-in default policy can still be evaluated below.'));
  else {
    el.append(h('nav', { 'aria-label': 'Policies' }, h('ul', null, names.map((n) =>
      h('li', null, h('a', { href: '#/policies/' + enc(n), 'aria-current': n === name ? 'page' : null }, n))))));
    if (!names.length) el.append(h('p', { class: 'muted' }, 'No policies pushed: namespaces use the built-in default policy.'));
  }

  let policy = null;
  if (!list.notAvailable && names.includes(name)) {
    const res = await get('/v1/admin/policies/' + enc(name));
    policy = res.policy || res;
  }
  el.append(h('h2', null, 'Policy ', h('code', null, name)));
  if (policy) {
    const modules = Object.entries(policy.modules || {}).sort(([a], [b]) => a.localeCompare(b));
    el.append(facts([['Version', h('code', { id: 'policy-version' }, policy.version || '—')], ['Modules', String(modules.length)],
      ['Used by', usedBy(nss.namespaces || [], name)]]),
    ...modules.map(([file, src]) => h('details', null, h('summary', null, file), h('pre', null, h('code', null, src)))));
  } else {
    el.append(h('p', null, name === 'default' ? 'The built-in default policy is in force (policies/*.rego in the Prism source).' : 'Not pushed yet.'),
      facts([['Used by', usedBy(nss.namespaces || [], name)]]));
  }

  el.append(h('h2', null, 'NACKs of policy versions'), nackTable(nodes.nodes || []));
  if (!list.notAvailable) el.append(editor(page, name, policy));
  el.append(evaluator(name, nss.namespaces || []));
}

function usedBy(namespaces, name) {
  const users = namespaces.filter((ns) => (ns.policy || 'default') === name).map((ns) => ns.namespace);
  return users.length ? users.join(', ') : h('span', { class: 'muted' }, 'no namespace');
}

// nackTable lists every node's view of the Policy type: the version it
// ACKed and, when it rejected one, the version and its error.
function nackTable(nodes) {
  const rows = [];
  for (const n of nodes) {
    for (const t of n.types || []) {
      if (t.type_url !== POLICY_TYPE) continue;
      const nack = t.last_nack;
      const current = nack && nack.version === t.sent_version;
      rows.push([h('code', null, n.id), n.class, t.sent_version || '—', t.acked_version || '—',
        nack ? h('div', null, current ? badge('bad', 'rejecting') : badge('neutral', 'earlier'), ' version ', h('code', null, nack.version), ' ', when(nack.at),
          h('pre', { class: 'nack-error' }, nack.error)) : badge('ok', 'none')]);
    }
  }
  return table(null, ['Node', 'Class', 'Sent', 'ACKed', 'Last NACK'], rows, { id: 'policy-nacks', empty: 'No node subscribes to policies yet.' });
}

// editor pushes a policy. The control plane compiles it and runs its Rego
// tests; a refusal (400) shows the compiler's or the tests' messages.
function editor(page, name, policy) {
  const out = h('div', { id: 'push-result', 'aria-live': 'polite' });
  const modules = Object.entries((policy && policy.modules) || { 'policy.rego': TEMPLATE });
  const nameInput = h('input', { id: 'policy-name', value: name, required: true });
  const areas = modules.map(([file, src], i) => {
    const id = 'module-' + i;
    return { file, area: h('textarea', { id, name: file, spellcheck: 'false', value: src }), label: h('label', { for: id }, file) };
  });
  const form = h('form', { id: 'push-policy', onsubmit: async (ev) => {
    ev.preventDefault();
    out.replaceChildren(h('p', null, 'Pushing…'));
    const mods = {};
    for (const a of areas) mods[a.file] = a.area.value;
    const target = nameInput.value.trim();
    try {
      const res = await put('/v1/admin/policies/' + enc(target), { name: target, modules: mods });
      const v = (res.policy && res.policy.version) || '';
      out.replaceChildren(notice('ok', `Policy ${target} accepted${v ? ', version ' + v : ''}. Nodes ACK asynchronously; see the NACK table.`));
      announce(`Policy ${target} accepted`);
    } catch (e) {
      if (e instanceof APIError && e.unauthenticated) throw e;
      out.replaceChildren(notice('error', h('strong', null, `Policy ${target} refused (${e.code}). `),
        'The policy in force is unchanged.', h('pre', { id: 'push-error' }, [e.message, ...(e.details || [])].join('\n'))));
      announce('Policy refused');
      out.querySelector('[role=alert], .notice').setAttribute('tabindex', '-1');
      out.firstChild.focus();
    }
  } },
  h('label', { for: 'policy-name' }, 'Policy name'), nameInput,
  ...areas.flatMap((a) => [a.label, a.area]),
  h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'push' }, 'Validate and push')));
  return h('section', { 'aria-labelledby': 'edit-h' }, h('h2', { id: 'edit-h' }, 'Edit and push'),
    h('p', { class: 'muted' }, 'The control plane compiles the modules and runs their *_test.rego tests before it accepts them; a refused policy never replaces the one in force.'),
    form, out);
}

// evaluator decides one input with the stored policy: the namespace's PII
// fields and access lists are filled in by the control plane.
function evaluator(name, namespaces) {
  const out = h('div', { id: 'eval-result', 'aria-live': 'polite' });
  const subject = h('input', { id: 'eval-subject', placeholder: 'spiffe://prism.local/profile-svc', size: 40 });
  const ns = h('select', { id: 'eval-ns' }, namespaces.map((n) => h('option', { value: n.namespace }, n.namespace)));
  const op = h('select', { id: 'eval-op' }, OPERATIONS.map((o) => h('option', { value: o }, o)));
  const key = h('input', { id: 'eval-key' });
  const purpose = h('input', { id: 'eval-purpose' });
  const form = h('form', { id: 'evaluate', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const res = await post(`/v1/admin/policies/${enc(name)}/evaluate`,
        { input: { subject: subject.value.trim(), namespace: ns.value, operation: op.value, key: key.value, purpose: purpose.value } });
      const r = res.result;
      fill(out,
        h('p', null, r.allow ? badge('ok', 'allow') : badge('bad', 'deny'), ` role ${r.role || '—'}; ${r.reason || ''}${r.audit ? '; audited' : ''}`),
        res.error ? notice('warn', 'The policy failed to evaluate, which extproc treats as deny: ', res.error) : null,
        table(null, ['Field', 'Action'], Object.entries(r.fields || {}).map(([f, a]) => [h('code', null, f), a]), { empty: 'The namespace has no PII fields.' }),
        h('p', { class: 'muted' }, `Policy ${res.policy.name} version ${res.policy.version}.`));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  } },
  h('div', { class: 'row' },
    h('div', null, h('label', { for: 'eval-subject' }, 'Subject'), subject),
    h('div', null, h('label', { for: 'eval-ns' }, 'Namespace'), ns),
    h('div', null, h('label', { for: 'eval-op' }, 'Operation'), op),
    h('div', null, h('label', { for: 'eval-key' }, 'Key (optional)'), key),
    h('div', null, h('label', { for: 'eval-purpose' }, 'Purpose (optional)'), purpose),
    h('div', null, h('button', { type: 'submit' }, 'Evaluate'))));
  return h('section', { 'aria-labelledby': 'eval-h' }, h('h2', { id: 'eval-h' }, 'Evaluate'),
    h('p', { class: 'muted' }, `Decide one request with policy ${name} as stored, without pushing anything. An empty subject is a caller without a certificate.`),
    form, out);
}
