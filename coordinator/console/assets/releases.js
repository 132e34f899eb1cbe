// #/releases: the list, filtered, with counts per state.
// #/releases/R: one release: plan, review, test, go-live plan, timeline, and
// the buttons of what this person may do now (actions.js).

import {h, replace, table, when} from './dom.js';
import {get, q, enc} from './api.js';
import {t, tv, lang} from './i18n.js';
import {actionBar} from './actions.js';

const STATES = ['draft', 'in_review', 'approved', 'testing', 'accepted', 'scheduled', 'deploying',
  'paused', 'deployed', 'failed', 'rolling_back', 'rolled_back', 'closed', 'cancelled'];
const SECTIONS = ['purpose', 'scope', 'participants', 'communication', 'work_plan', 'follow_up',
  'rollback_plan', 'known_issues', 'baseline'];

export function stateBadge(state) {
  return h('span', {class: `badge state-${state}`, dataset: {state}}, tv('state', state));
}

export function releaseLink(id) {
  return h('a', {href: `#/releases/${enc(id)}`}, id);
}

export function releasesPage(main, ctx) {
  const filters = {
    state: ctx.query.get('state') || '', category: ctx.query.get('category') || '',
    product: ctx.query.get('product') || '', month: ctx.query.get('month') || '',
    change: ctx.query.get('change') || '',
  };
  const counts = h('div', {class: 'counts', id: 'state-counts'});
  const list = h('div', {id: 'release-list'}, h('p', {class: 'muted'}, t('loading')));
  let all = [];

  const select = (name, options, family) => h('select', {name, onchange: (e) => { filters[name] = e.target.value; draw(); }},
    h('option', {value: ''}, t('all')),
    options.map((o) => h('option', {value: o, selected: filters[name] === o}, family ? tv(family, o) : o)));
  const input = (name, type, placeholder) => h('input', {name, type, placeholder, value: filters[name],
    oninput: (e) => { filters[name] = e.target.value.trim(); draw(); }});
  const form = h('form', {class: 'filters', id: 'release-filters', onsubmit: (e) => e.preventDefault()});

  function drawForm() {
    const categories = [...new Set(all.map((r) => r.category))].sort();
    const products = [...new Set(all.map((r) => r.product))].sort();
    replace(form,
      h('label', {}, t('state'), select('state', STATES, 'state')),
      h('label', {}, t('category'), select('category', categories, 'category')),
      h('label', {}, t('product'), select('product', products)),
      h('label', {}, t('month'), input('month', 'month', 'YYYY-MM')),
      h('label', {}, t('change_refs'), input('change', 'text', 'CHG-…')));
  }

  function draw() {
    const per = {};
    for (const r of all) per[r.state] = (per[r.state] || 0) + 1;
    replace(counts, STATES.filter((s) => per[s]).map((s) =>
      h('a', {href: `#/releases?state=${s}`, class: `count ${filters.state === s ? 'active' : ''}`, dataset: {state: s}},
        stateBadge(s), h('span', {class: 'n'}, String(per[s])))));
    const shown = all.filter((r) =>
      (!filters.state || r.state === filters.state) &&
      (!filters.category || r.category === filters.category) &&
      (!filters.product || r.product === filters.product) &&
      (!filters.month || (r.updated || '').startsWith(filters.month)) &&
      (!filters.change || (r.change_refs || []).some((c) => c.toLowerCase().includes(filters.change.toLowerCase()))));
    replace(list, table([
      {label: t('release'), cell: (r) => releaseLink(r.id)},
      {label: t('title'), cell: (r) => r.title},
      {label: t('product'), cell: (r) => r.product},
      {label: t('version'), cell: (r) => r.version},
      {label: t('category'), cell: (r) => tv('category', r.category)},
      {label: t('state'), cell: (r) => stateBadge(r.state)},
      {label: t('owner'), cell: (r) => r.owner},
      {label: t('change_refs'), cell: (r) => (r.change_refs || []).join(', ')},
      {label: t('updated'), cell: (r) => when(r.updated)},
    ], shown, {id: 'releases', empty: t('none'), rowData: (r) => ({release: r.id})}));
  }

  replace(main, h('h1', {}, t('releases.title')), counts, form, list);
  get('/api/v1/releases').then((body) => {
    all = (body.releases || []).slice().reverse();
    drawForm();
    draw();
  }).catch((e) => replace(list, ctx.errorBox(e)));
}

function section(title, id, ...content) {
  return h('section', {class: 'card', id}, h('h2', {}, title), ...content);
}

function dl(pairs) {
  return h('dl', {class: 'facts'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function text(value) {
  return value ? h('div', {class: 'prose'}, value) : h('span', {class: 'muted'}, t('empty'));
}

// The current round's decision of each reviewer.
function reviewRows(r) {
  const rows = (r.plan.reviewers || []).map((reviewer) => {
    const approved = (r.approvals || []).find((d) => d.reviewer === reviewer && d.round === r.review_round);
    const rejected = (r.rejections || []).filter((d) => d.reviewer === reviewer && d.round === r.review_round).pop();
    const d = approved || rejected;
    return {reviewer, decision: d ? d.decision : 'pending', at: d && d.at, comment: d ? d.comment : '', round: r.review_round};
  });
  // Rejections of earlier rounds stay visible, with their comments.
  for (const d of r.rejections || []) {
    if (d.round !== r.review_round) rows.push({...d});
  }
  return rows;
}

async function exportDoc(r, doc) {
  const format = doc === 'upgrade-records' ? 'csv' : 'html';
  const body = await get(`/api/v1/releases/${enc(r.id)}/export${q({doc, format, lang: lang()})}`);
  const blob = new Blob([body.content], {type: format === 'csv' ? 'text/csv' : 'text/html'});
  const a = h('a', {href: URL.createObjectURL(blob), download: `${r.id}-${doc}.${format}`});
  document.body.appendChild(a);
  a.click();
  a.remove();
}

function mib(bytes) {
  return typeof bytes === 'number' ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : '—';
}

// The latest pre-flight round: could each production target install the
// release now (deploy/preflight.hpp). Hosts that would fail come first.
function preflightSection(p) {
  const order = {would_fail: 0, unknown: 1, waiting: 2, ready: 3};
  const hosts = (p.hosts || []).slice().sort((a, b) =>
    (order[a.state] ?? 4) - (order[b.state] ?? 4) || a.host.localeCompare(b.host));
  const counts = ['ready', 'would_fail', 'unknown', 'waiting'].map((k) =>
    h('span', {class: `pf-count pf-${k}`, dataset: {count: k}}, `${tv('preflight_state', k)} ${p[k] || 0}`));
  return section(t('preflight'), 'preflight', dl([
    [t('preflight.round'), String(p.round)],
    [t('preflight.asked'), `${when(p.asked)} · ${p.asked_by || ''}`],
    [t('preflight.counts'), h('span', {class: 'pf-counts'}, counts.flatMap((c, i) => (i ? [' · ', c] : [c])))],
    p.override ? [t('preflight.override'), h('span', {id: 'preflight-override'},
      `${p.override.by} ${when(p.override.at)}: ${p.override.reason}`)] : null,
  ]), table([
    {label: t('host'), cell: (x) => x.host},
    {label: t('state'), cell: (x) => h('span', {class: `pf-state pf-${x.state}`}, tv('preflight_state', x.state))},
    {label: t('preflight.free'), cell: (x) => mib(x.free_bytes)},
    {label: t('preflight.installed'), cell: (x) => x.installed_version || '—'},
    {label: t('preflight.reasons'), class: 'wide', cell: (x) => (x.reasons || []).join('; ')},
  ], hosts, {id: 'preflight-hosts', rowData: (x) => ({host: x.host, state: x.state})}));
}

export function releasePage(main, ctx, id) {
  let alive = true;
  replace(main, h('p', {class: 'muted'}, t('loading')));
  async function load() {
    let r; let status = null; let testHosts = [];
    try {
      r = await get(`/api/v1/releases/${enc(id)}`);
      // What the release's state calls for, asked at once, not one after another.
      const [deployed, rollout, preflight] = await Promise.all([
        // The test deployment's hosts only: a production rollout may hold 20,000.
        !['draft', 'in_review'].includes(r.state)
          ? get(`/api/v1/releases/${enc(id)}/hosts?environment=test`) : null,
        // The waves and the "waiting:" line; the hosts are the rollout page's.
        ['deploying', 'paused', 'failed', 'deployed'].includes(r.state)
          ? get(`/api/v1/releases/${enc(id)}/status?host_limit=0`) : null,
        // The hosts that would fail first, 100 of them; the counts are the round's.
        r.state !== 'cancelled' ? get(`/api/v1/releases/${enc(id)}/preflight?host_limit=100`) : null,
      ]);
      if (deployed) testHosts = deployed.hosts || [];
      if (rollout) status = rollout;
      if (preflight) r.preflight = preflight.preflight;
    } catch (e) {
      if (alive) replace(main, ctx.errorBox(e));
      return;
    }
    if (!alive) return;
    draw(r, status, testHosts);
    // A pre-flight round whose answers are still coming: followed each second.
    if (r.preflight && r.preflight.waiting > 0 && !document.querySelector('#dialog[open]')) {
      setTimeout(() => { if (alive) load(); }, 1000);
    }
  }
  function draw(r, status, testHosts) {
    const p = r.plan || {};
    const g = p.golive;
    const hasRollout = !['draft', 'in_review', 'approved', 'testing', 'accepted', 'scheduled', 'cancelled'].includes(r.state);
    const docs = ['plan', 'test-report', 'release-report', 'upgrade-records'];
    replace(main,
      h('div', {class: 'page-head'},
        h('h1', {}, h('span', {id: 'release-id'}, r.id), ' ', p.title || ''),
        h('span', {id: 'release-state'}, stateBadge(r.state)),
        hasRollout ? h('a', {class: 'btn', id: 'rollout-link', href: `#/releases/${enc(r.id)}/rollout`}, t('rollout.link')) : null),
      status && status.waiting ? h('p', {class: 'waiting', id: 'waiting'}, `${t('waiting')}: ${status.waiting}`) : null,
      actionBar(r, ctx.session, status, load),
      h('div', {class: 'cols'},
        section(t('release'), 'summary', dl([
          [t('product'), p.product], [t('version'), p.version], [t('category'), tv('category', p.category)],
          [t('owner'), r.owner], [t('change_refs'), (p.change_refs || []).join(', ')],
          [t('packages'), h('span', {class: 'mono'}, (p.packages || []).map((x) => x.slice(0, 12)).join(', '))],
          [t('targets'), p.targets ? `${t('selector')}: ${p.targets.selector}` : t('not_set')],
          [t('reviewers'), (p.reviewers || []).join(', ')],
          [t('updated'), when(r.updated_at)],
          r.close_code ? [t('close_code'), tv('close_code', r.close_code)] : null,
          r.test_waived_ever ? [t('acceptance'), h('strong', {class: 'warn'}, t('test_waived_flag'))] : null,
          [t('export'), h('span', {class: 'exports'}, docs.map((d) =>
            h('button', {class: 'btn small', dataset: {doc: d}, onclick: () => exportDoc(r, d).catch((e) => main.prepend(ctx.errorBox(e)))}, d)))],
        ])),
        section(t('golive'), 'golive', g ? dl([
          [t('window'), g.window ? `${when(g.window.start)} – ${when(g.window.end)}` : t('not_set')],
          [t('waves'), (g.waves || []).join(', ')],
          [t('max_failures'), g.max_failures], [t('between_waves'), g.between_waves],
          [t('host_timeout'), g.host_timeout], [t('auto_rollback'), g.auto_rollback ? t('yes') : t('no')],
          g.observe ? [t('observe'), g.observe] : null,
          [t('golive_approval'), r.golive_approved
            ? (r.golive_approval ? `${t('golive_approved')}: ${r.golive_approval.by} ${when(r.golive_approval.at)}` : t('golive_approved'))
            : t('golive_not_approved')],
        ]) : h('p', {class: 'muted'}, t('not_set')))),
      r.preflight ? preflightSection(r.preflight) : null,
      section(t('plan'), 'plan', h('dl', {class: 'sections'}, SECTIONS.map((s) =>
        [h('dt', {}, t(`section.${s}`)), h('dd', {dataset: {section: s}}, text((p.plan || {})[s]))]))),
      section(t('review'), 'review', table([
        {label: t('reviewer'), cell: (d) => d.reviewer},
        {label: t('decision'), cell: (d) => h('span', {class: `decision ${d.decision}`}, tv('decision', d.decision))},
        {label: t('round'), cell: (d) => String(d.round)},
        {label: t('at'), cell: (d) => when(d.at)},
        {label: t('comment'), cell: (d) => d.comment || ''},
      ], reviewRows(r), {empty: t('none')})),
      section(t('tests'), 'tests',
        testHosts.length ? [h('h3', {}, t('test_deployment')), table([
          {label: t('host'), cell: (x) => x.host},
          {label: t('started'), cell: (x) => when(x.created)},
          {label: t('step'), cell: (x) => x.step},
          {label: t('result'), cell: (x) => x.result ? h('span', {class: `result ${x.result}`}, tv('result', x.result)) : '—'},
          {label: t('message'), class: 'wide', cell: (x) => [x.message || '', x.output ? h('pre', {class: 'out'}, x.output) : null]},
        ], testHosts, {id: 'test-hosts'}), h('h3', {}, t('tests'))] : null,
        table([
          {label: t('result'), cell: (x) => tv('test_result', x.result)},
          {label: t('author'), cell: (x) => x.author},
          {label: t('at'), cell: (x) => when(x.at)},
          {label: t('test_deployment'), cell: (x) => x.test_deployed_at ? when(x.test_deployed_at) : '—'},
          {label: t('report'), cell: (x) => h('pre', {class: 'out'}, x.text)},
        ], r.test_reports || [], {empty: t('none')}),
        r.acceptance ? dl([[t('accepted_by'), `${r.acceptance.by} ${when(r.acceptance.at)}`],
          r.acceptance.comment ? [t('comment'), r.acceptance.comment] : null,
          r.acceptance.test_waived ? [t('waive_reason'), r.acceptance.waive_reason] : null]) : null),
      section(t('timeline'), 'timeline',
        h('p', {}, h('a', {href: `#/audit?release=${enc(r.id)}`, id: 'audit-link'}, t('audit.title'))),
        table([
        {label: t('at'), cell: (e) => when(e.at)},
        {label: t('action'), cell: (e) => t(`action.${e.action}`)},
        {label: t('actor'), cell: (e) => e.actor},
        {label: t('role'), cell: (e) => t(`role.${e.role}`)},
        {label: `${t('from')} → ${t('to')}`, cell: (e) => e.from === e.to ? tv('state', e.to) : `${tv('state', e.from)} → ${tv('state', e.to)}`},
        {label: t('note'), cell: (e) => e.note || ''},
      ], r.history || [], {id: 'history', rowData: (e) => ({action: e.action, actor: e.actor})})));
  }
  load();
  return () => { alive = false; };
}
