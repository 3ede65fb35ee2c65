// The admin UI's shell: hash routing, the sign-in box, polling that stops
// when the operator leaves a page, and focus moved to the new page's heading
// so keyboard and screen reader users land where the content is.
import { APIError, setToken, token } from './api.js';
import { h, errorBox, fill } from './dom.js';
import * as namespaces from './pages/namespaces.js';
import * as namespace from './pages/namespace.js';
import * as migrations from './pages/migrations.js';
import * as policies from './pages/policies.js';
import * as nodes from './pages/nodes.js';

const routes = [
  [/^#\/namespaces\/?$/, 'namespaces', namespaces.render],
  [/^#\/namespaces\/([^/]+)\/?$/, 'namespaces', namespace.render],
  [/^#\/migrations\/?$/, 'migrations', migrations.renderList],
  [/^#\/migrations\/([^/]+)\/?$/, 'migrations', migrations.renderOne],
  [/^#\/policies\/?$/, 'policies', policies.render],
  [/^#\/policies\/([^/]+)\/?$/, 'policies', policies.render],
  [/^#\/nodes\/?$/, 'nodes', nodes.render],
];

let generation = 0;

// Page is what a page's render function gets: where to draw, and polling
// bound to the page's lifetime.
class Page {
  constructor(main, gen) {
    this.main = main;
    this.gen = gen;
  }
  get current() { return this.gen === generation; }
  // every calls fn now and then every ms while the page is shown; a 401
  // sends the operator to the sign-in box, other errors show in errEl.
  every(ms, fn, errEl) {
    const tick = async () => {
      if (!this.current) return;
      if (!document.hidden) {
        try {
          await fn();
          if (errEl) errEl.replaceChildren();
        } catch (e) {
          if (!this.current) return;
          if (e instanceof APIError && e.unauthenticated) { showLogin(e); return; }
          if (errEl) errEl.replaceChildren(errorBox(e)); else console.error(e);
        }
      }
      if (this.current) setTimeout(tick, ms);
    };
    return tick();
  }
  rerender() { route(false); }
}

async function route(moveFocus) {
  const gen = ++generation;
  const main = document.getElementById('main');
  let hash = location.hash || '#/namespaces';
  let found = routes.find(([re]) => re.test(hash));
  if (!found) {
    hash = '#/namespaces';
    found = routes[0];
  }
  const [re, nav, render] = found;
  const params = hash.match(re).slice(1).map(decodeURIComponent);
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  renderSession();
  const page = new Page(main, gen);
  const content = h('div', { class: 'page' });
  try {
    await render(page, content, ...params);
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof APIError && e.unauthenticated) { showLogin(e); return; }
    content.append(errorBox(e));
  }
  if (gen !== generation) return;
  main.replaceChildren(content);
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.tabIndex = -1;
    document.title = h1.textContent + ' · Prism admin';
    if (moveFocus) h1.focus();
  }
}

function renderSession() {
  const el = document.getElementById('session');
  if (!token()) { el.replaceChildren(); return; }
  el.replaceChildren(h('span', null, 'Signed in with an admin token'),
    h('button', { type: 'button', class: 'secondary', onclick: () => { setToken(''); showLogin(); } }, 'Sign out'));
}

// showLogin asks for the admin token; it is kept in sessionStorage only.
function showLogin(err) {
  ++generation;
  renderSession();
  const main = document.getElementById('main');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true, size: 40 });
  const form = h('form', { id: 'login', onsubmit: (ev) => { ev.preventDefault(); setToken(input.value.trim()); route(true); } },
    h('label', { for: 'token' }, 'Admin token'),
    h('p', { class: 'muted', id: 'token-help' }, 'The bearer token of the admin API (--admin-token or PRISM_ADMIN_TOKEN). It is kept for this browser tab only.'),
    input,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
  input.setAttribute('aria-describedby', 'token-help');
  fill(main, h('h1', null, 'Sign in'),
    err && token() ? errorBox(err) : err ? h('p', null, 'This control plane requires the admin identity.') : null,
    form);
  document.title = 'Sign in · Prism admin';
  input.focus();
}

// The skip link focuses the content instead of changing the hash, which
// here is the router's.
document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('main').focus();
});
window.addEventListener('hashchange', () => route(true));
route(false);
