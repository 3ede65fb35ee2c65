// xDS nodes: every Envoy, extproc and proxyless gRPC node the control plane
// has seen, and per resource type the version sent, the version ACKed and
// the last NACK.
import { get } from '../api.js';
import { h, fill, table, badge, when, facts } from '../dom.js';

export async function render(page, el) {
  const errEl = h('div');
  const body = h('div');
  el.append(h('h1', null, 'xDS nodes'), errEl, body);
  const draw = (res) => {
    const nodes = res.nodes || [];
    const served = res.served || {};
    fill(body,
      h('p', { class: 'muted' }, 'Refreshed every 3 s. A node that rejects a version (NACK) keeps the one it ACKed before.'),
      Object.keys(served).length ? facts(Object.entries(served).map(([k, v]) => [k.replaceAll('_', ' '), typeof v === 'object' ? JSON.stringify(v) : String(v)])) : null,
      nodes.length ? null : h('p', null, 'No node has connected yet.'),
      ...nodes.map((n) => h('section', { 'aria-label': 'Node ' + n.id },
        h('h2', null, h('code', null, n.id), ' ', n.connected ? badge('ok', 'connected') : badge('neutral', 'disconnected')),
        facts([['Class', n.class], ['Cluster', n.cluster || '—'], ['Streams', String(n.streams)], ['Last seen', when(n.last_seen)]]),
        table(null, ['Type', 'Sent', 'ACKed', 'In sync', 'Last NACK'], (n.types || []).map((t) => [
          h('code', null, t.type_url.replace('type.googleapis.com/', '')),
          t.sent_version || '—', t.acked_version || '—',
          t.in_sync ? badge('ok', 'yes') : badge('warn', 'no'),
          t.last_nack ? h('div', null, h('code', null, t.last_nack.version), ' ', when(t.last_nack.at), h('pre', null, t.last_nack.error)) : '—',
        ]), { empty: 'Nothing subscribed.' }))),
    );
  };
  draw(await get('/v1/admin/nodes'));
  page.every(3000, async () => draw(await get('/v1/admin/nodes')), errEl);
}
