// The fabu web console: sign-in, the shell (navigation, language, sign-out)
// and the hash router. Pages live in their own modules; each is
// `render(main, ctx)` and may return a function that stops what it started
// (the rollout page's long poll). docs/console.md says what each page does.

import {h, replace} from './dom.js';
import {api, get, post, setCsrf, ApiError} from './api.js';
import {t, tv, setLang, pickLang, lang, LANGS} from './i18n.js';
import {releasesPage, releasePage} from './releases.js';
import {rolloutPage} from './rollout.js';
import {hostsPage, hostPage, outboxPage} from './hosts.js';
import {freezesPage, auditPage, recordsPage} from './misc.js';

const main = document.getElementById('main');
const top = document.getElementById('top');
let session = null;
let stopPage = null;

const routes = [
  [/^\/releases$/, (m, ctx) => releasesPage(main, ctx)],
  [/^\/releases\/([^/]+)$/, (m, ctx) => releasePage(main, ctx, decodeURIComponent(m[1]))],
  [/^\/releases\/([^/]+)\/rollout$/, (m, ctx) => rolloutPage(main, ctx, decodeURIComponent(m[1]))],
  [/^\/hosts$/, (m, ctx) => hostsPage(main, ctx)],
  [/^\/hosts\/([^/]+)$/, (m, ctx) => hostPage(main, ctx, decodeURIComponent(m[1]))],
  [/^\/outbox$/, (m, ctx) => outboxPage(main, ctx)],
  [/^\/freezes$/, (m, ctx) => freezesPage(main, ctx)],
  [/^\/audit$/, (m, ctx) => auditPage(main, ctx)],
  [/^\/records$/, (m, ctx) => recordsPage(main, ctx)],
];

const navItems = [
  ['#/releases', 'nav.releases'], ['#/hosts', 'nav.hosts'], ['#/outbox', 'nav.outbox'],
  ['#/freezes', 'nav.freezes'], ['#/audit', 'nav.audit'], ['#/records', 'nav.records'],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/releases';
  const at = raw.indexOf('?');
  const path = at >= 0 ? raw.slice(0, at) : raw;
  const query = new URLSearchParams(at >= 0 ? raw.slice(at + 1) : '');
  return {path, query};
}

// Shows an error from the server (or the network) where the person looks.
export function errorBox(error) {
  const message = error instanceof ApiError ? error.message : String(error && error.message || error);
  return h('div', {class: 'error', role: 'alert'}, h('strong', {}, `${t('error')}: `), message);
}

function renderShell() {
  if (!session) {
    top.hidden = true;
    return;
  }
  top.hidden = false;
  const {path} = parseHash();
  replace(document.getElementById('nav'), navItems.map(([href, key]) =>
    h('a', {href, class: path.startsWith(href.slice(1)) ? 'active' : ''}, t(key))));
  const select = h('select', {id: 'lang', 'aria-label': t('lang'), onchange: (e) => changeLang(e.target.value)},
    LANGS.map(([code, name]) => h('option', {value: code, selected: code === lang()}, name)));
  replace(document.getElementById('who'),
    h('span', {id: 'who-name', class: 'user'}, session.user),
    h('span', {id: 'who-role', class: 'role'}, tv('role', session.role)),
    select,
    h('button', {id: 'signout', class: 'btn small', onclick: signOut}, t('signout')));
}

async function changeLang(code) {
  try {
    const body = await post('/api/v1/session/lang', {lang: code});
    session = body;
    setCsrf(body.csrf);
    setLang(pickLang(body.lang));
  } catch (e) {
    setLang(code);  // still show it in this browser
  }
  route();
}

async function signOut() {
  try { await api('DELETE', '/api/v1/session', undefined, {quiet401: true}); } catch (e) { /* ended anyway */ }
  session = null;
  setCsrf('');
  location.hash = '#/releases';
  showSignIn();
}

function showSignIn(message) {
  if (stopPage) { stopPage(); stopPage = null; }
  renderShell();
  const user = h('input', {id: 'signin-user', name: 'user', autocomplete: 'username', required: true});
  const token = h('input', {id: 'signin-token', name: 'token', type: 'password',
    autocomplete: 'current-password', required: true});
  const status = h('div', {id: 'signin-status'}, message ? errorBox(message) : null);
  const form = h('form', {id: 'signin', class: 'card signin', onsubmit: async (e) => {
    e.preventDefault();
    replace(status);
    try {
      const body = await api('POST', '/api/v1/session', {user: user.value.trim(), token: token.value.trim()},
        {quiet401: true});
      token.value = '';
      await started(body);
    } catch (err) {
      replace(status, errorBox(err));
    }
  }},
  h('h1', {}, t('signin.title')),
  h('p', {class: 'muted'}, t('signin.hint')),
  h('label', {}, t('signin.user'), user),
  h('label', {}, t('signin.token'), token),
  h('button', {class: 'btn primary', type: 'submit'}, t('signin.submit')),
  status);
  replace(main, form);
  user.focus();
}

async function started(body) {
  session = body;
  setCsrf(body.csrf);
  setLang(pickLang(body.lang));
  route();
}

function route() {
  if (stopPage) { stopPage(); stopPage = null; }
  if (!session) { showSignIn(); return; }
  renderShell();
  const {path, query} = parseHash();
  const ctx = {session, query, errorBox};
  for (const [pattern, render] of routes) {
    const m = path.match(pattern);
    if (m) {
      main.dataset.page = pattern.source;
      const stop = render(m, ctx);
      stopPage = typeof stop === 'function' ? stop : null;
      return;
    }
  }
  replace(main, errorBox(`no page ${path}`));
}

window.addEventListener('hashchange', route);
window.addEventListener('fabu:signed-out', () => {
  if (!session) return;
  session = null;
  showSignIn(t('signin.expired'));
});

async function boot() {
  setLang(pickLang(null));
  try {
    const body = await get('/api/v1/session', {quiet401: true});
    await started(body);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showSignIn();
    else showSignIn(e);
  }
}

boot();
