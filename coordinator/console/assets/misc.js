// #/freezes: freeze periods and the coming six weeks as a calendar, with the
// go-live windows of scheduled releases beside them.
// #/audit: the audit trail, filtered, and `audit verify`.
// #/records: the month's release management report (KPIs).

import {h, replace, table, when} from './dom.js';
import {get, post, q, enc} from './api.js';
import {t, tv, lang} from './i18n.js';
import {releaseLink, stateBadge} from './releases.js';

const DAY = 86400000;
const pad = (n) => String(n).padStart(2, '0');
const dayKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

function overlaps(from, to, dayStart) {
  return from < dayStart + DAY && to > dayStart;
}

export function freezesPage(main, ctx) {
  const out = h('div', {}, h('p', {class: 'muted'}, t('loading')));
  replace(main, h('h1', {}, t('freezes.title')), out);
  const mayAdd = ['admin', 'release_manager', 'approver'].includes(ctx.session.role);
  async function load() {
    const [freezes, releases] = await Promise.all([get('/api/v1/freezes'), get('/api/v1/releases')]);
    const open = (releases.releases || []).filter((r) => ['accepted', 'scheduled', 'deploying', 'paused'].includes(r.state));
    const full = await Promise.all(open.map((r) => get(`/api/v1/releases/${enc(r.id)}`)));
    const windows = full.filter((r) => r.plan.golive && r.plan.golive.window).map((r) => ({
      id: r.id, title: r.plan.title, state: r.state,
      from: Date.parse(r.plan.golive.window.start), to: Date.parse(r.plan.golive.window.end)}));
    const list = (freezes.freezes || []).map((f) => ({...f, fromMs: Date.parse(f.from), toMs: Date.parse(f.to)}));
    // Six weeks from this week's Monday.
    const today = new Date(); today.setHours(0, 0, 0, 0);
    const first = new Date(today.getTime() - ((today.getDay() + 6) % 7) * DAY);
    const weeks = [];
    for (let w = 0; w < 6; ++w) {
      const days = [];
      for (let d = 0; d < 7; ++d) {
        const day = new Date(first.getFullYear(), first.getMonth(), first.getDate() + w * 7 + d);
        const start = day.getTime();
        days.push(h('td', {class: `day ${dayKey(day) === dayKey(today) ? 'today' : ''}`, dataset: {day: dayKey(day)}},
          h('div', {class: 'date'}, `${day.getMonth() + 1}/${day.getDate()}`),
          list.filter((f) => overlaps(f.fromMs, f.toMs, start)).map((f) =>
            h('div', {class: 'chip freeze', title: f.reason}, `${f.id} ${f.reason}`)),
          windows.filter((r) => overlaps(r.from, r.to, start)).map((r) =>
            h('a', {class: 'chip window', href: `#/releases/${enc(r.id)}`, title: r.title}, `${r.id} ${r.title}`))));
      }
      weeks.push(h('tr', {}, days));
    }
    const names = lang() === 'zh-CN' ? ['一', '二', '三', '四', '五', '六', '日'] : ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
    replace(out,
      mayAdd ? addForm(load, ctx) : null,
      h('section', {class: 'card'}, h('h2', {}, t('calendar')),
        h('table', {class: 'calendar', id: 'calendar'}, h('thead', {}, h('tr', {}, names.map((n) => h('th', {}, n)))),
          h('tbody', {}, weeks))),
      h('div', {class: 'cols'},
        h('section', {class: 'card'}, h('h2', {}, t('freezes.title')), table([
          {label: t('freeze'), cell: (f) => f.id},
          {label: t('from'), cell: (f) => when(f.from)},
          {label: t('to'), cell: (f) => when(f.to)},
          {label: t('selector'), cell: (f) => f.selector || t('all')},
          {label: t('reason'), cell: (f) => f.reason},
          {label: t('actor'), cell: (f) => f.created_by},
          mayAdd ? {label: '', cell: (f) => h('button', {class: 'btn small danger', onclick: async () => {
            try { await post(`/api/v1/freezes/${enc(f.id)}/remove`); load(); } catch (e) { replace(out, ctx.errorBox(e)); }
          }}, t('remove'))} : null,
        ].filter(Boolean), list, {id: 'freezes', empty: t('none')})),
        h('section', {class: 'card'}, h('h2', {}, t('windows')), table([
          {label: t('release'), cell: (r) => releaseLink(r.id)},
          {label: t('title'), cell: (r) => r.title},
          {label: t('state'), cell: (r) => stateBadge(r.state)},
          {label: t('window'), cell: (r) => `${when(r.from / 1000)} – ${when(r.to / 1000)}`},
        ], windows, {id: 'windows', empty: t('none')}))));
  }
  load().catch((e) => replace(out, ctx.errorBox(e)));
}

function addForm(done, ctx) {
  const status = h('div');
  const input = (name, placeholder) => h('input', {name, placeholder, required: name !== 'selector'});
  const form = h('form', {class: 'filters card', id: 'freeze-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = {};
    for (const name of ['from', 'to', 'reason', 'selector']) {
      const v = form.elements[name].value.trim();
      if (v) body[name] = v;
    }
    try { await post('/api/v1/freezes', body); done(); } catch (err) { replace(status, ctx.errorBox(err)); }
  }},
  h('label', {}, t('from'), input('from', '2026-12-24')),
  h('label', {}, t('to'), input('to', '2027-01-02')),
  h('label', {}, t('reason'), input('reason', '')),
  h('label', {}, t('selector'), input('selector', 'site=gz')),
  h('button', {class: 'btn primary', type: 'submit'}, t('add_freeze')), status);
  return form;
}

// Audit entries per page (newest first).
const AUDIT_PAGE = 200;

export function auditPage(main, ctx) {
  const filters = {release: ctx.query.get('release') || '', actor: '', action: ''};
  const watch = h('div', {id: 'watch'});
  const verify = h('div', {id: 'verify'});
  const list = h('div', {}, h('p', {class: 'muted'}, t('loading')));
  let entries = [];
  let more = false;
  const input = (name, placeholder) => h('input', {name, placeholder, value: filters[name],
    oninput: (e) => { filters[name] = e.target.value.trim(); if (name !== 'release') draw(); }});
  const form = h('form', {class: 'filters', id: 'audit-filters', onsubmit: (e) => { e.preventDefault(); load(false); }},
    h('label', {}, t('release'), input('release', 'R-1')),
    h('label', {}, t('actor'), input('actor', '')),
    h('label', {}, t('action'), input('action', 'release.')),
    h('button', {class: 'btn', type: 'submit'}, t('filter')),
    h('button', {class: 'btn', type: 'button', id: 'verify-button', onclick: runVerify}, t('audit.verify')));
  replace(main, h('h1', {}, t('audit.title')), form, watch, verify, list);

  // What the coordinator's own periodic check found last: at once. The
  // whole chain is read only when someone asks (the button): at a few
  // hundred thousand entries that takes seconds.
  async function showWatch() {
    try {
      const w = await get('/api/v1/audit/watch');
      const at = w.checked ? ` (${t('audit.checked_at')} ${when(w.at)}, ${t('audit.every')} ${w.every_seconds})` : '';
      replace(watch, h('p', {class: !w.checked ? 'muted' : w.intact ? 'okbox' : 'error', id: 'watch-result',
        dataset: {intact: String(w.checked ? w.intact : '')}},
      !w.checked ? t('audit.watch_none')
        : w.intact ? `${t('audit.watch_intact')} #${w.verified_seq}${at}`
          : `${t('audit.watch_broken')} #${w.verified_seq}: ${w.reason}${at}`));
    } catch (e) { replace(watch, ctx.errorBox(e)); }
  }

  async function runVerify() {
    replace(verify, h('p', {class: 'muted'}, t('loading')));
    try {
      const v = await get('/api/v1/audit/verify');
      replace(verify, h('p', {class: v.intact ? 'okbox' : 'error', id: 'verify-result', dataset: {intact: String(v.intact)}},
        v.intact ? `${t('audit.intact')} (${v.count} ${t('entries')})`
          : `${t('audit.broken')}: #${v.broken_seq} ${v.reason || ''}`));
    } catch (e) { replace(verify, ctx.errorBox(e)); }
  }
  function draw() {
    const shown = entries.filter((e) => (!filters.actor || e.actor.includes(filters.actor)) &&
      (!filters.action || e.action.includes(filters.action)));
    replace(list, h('p', {class: 'muted'}, `${shown.length} ${t('entries')}`), table([
      {label: t('seq'), cell: (e) => String(e.seq)},
      {label: t('at'), cell: (e) => when(e.time)},
      {label: t('actor'), cell: (e) => e.actor},
      {label: t('role'), cell: (e) => t(`role.${e.role}`)},
      {label: t('action'), cell: (e) => e.action},
      {label: t('object'), cell: (e) => e.release_id ? releaseLink(e.release_id) : `${e.object_type} ${e.object_id}`},
      {label: t('source'), cell: (e) => e.source},
      {label: t('detail'), class: 'wide', cell: (e) => h('code', {class: 'detail'},
        typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail))},
    ], shown, {id: 'audit', empty: t('none'), rowData: (e) => ({action: e.action, actor: e.actor})}),
    more ? h('button', {class: 'btn', id: 'audit-older', onclick: () => load(true)}, t('audit.older')) : null);
  }
  // The newest entries first, a page at a time; "older" fetches the page
  // before the oldest shown.
  async function load(older) {
    try {
      const before = older && entries.length ? entries[entries.length - 1].seq : Number.MAX_SAFE_INTEGER;
      const body = await get(`/api/v1/audit${q({release: filters.release, before, limit: AUDIT_PAGE})}`);
      const page = body.entries || [];
      entries = older ? entries.concat(page) : page;
      more = page.length === AUDIT_PAGE;
      draw();
    } catch (e) { replace(list, ctx.errorBox(e)); }
  }
  load(false);
  showWatch();
}

export function recordsPage(main, ctx) {
  const now = new Date();
  const month = ctx.query.get('month') || `${now.getFullYear()}-${pad(now.getMonth() + 1)}`;
  const out = h('div', {}, h('p', {class: 'muted'}, t('loading')));
  const input = h('input', {type: 'month', name: 'month', value: month});
  replace(main, h('h1', {}, t('records.title')),
    h('form', {class: 'filters', onsubmit: (e) => { e.preventDefault(); location.hash = `#/records?month=${input.value}`; }},
      h('label', {}, t('month'), input), h('button', {class: 'btn', type: 'submit'}, t('show'))), out);
  async function download(format) {
    const body = await get(`/api/v1/reports${q({month, format, lang: lang()})}`);
    const types = {csv: 'text/csv', md: 'text/markdown', html: 'text/html'};
    const a = h('a', {href: URL.createObjectURL(new Blob([body.content], {type: types[format]})),
      download: `fabu-report-${month}.${format}`});
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  get(`/api/v1/reports${q({month})}`).then((r) => {
    const ratio = (x) => (x ? x.text : '—');
    replace(out,
      h('div', {class: 'exports', id: 'report-exports'}, t('export'), ['html', 'md', 'csv'].map((f) =>
        h('button', {class: 'btn small', dataset: {format: f}, onclick: () => download(f).catch((e) => replace(out, ctx.errorBox(e)))}, f))),
      h('section', {class: 'card', id: 'kpis'}, h('h2', {}, t('kpi')), h('dl', {class: 'facts'},
        [[t('closed'), String(r.closed)], [t('success_ratio'), ratio(r.success_ratio)],
          [t('timeliness_ratio'), ratio(r.timeliness_ratio)], [t('rollbacks'), String(r.rollbacks)],
          [t('incidents'), String(r.incidents ? r.incidents.total : 0)]]
          .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
      h('section', {class: 'card'}, h('h2', {}, t('category')), table([
        {label: t('category'), cell: ([c]) => tv('category', c)},
        {label: t('count'), cell: ([, n]) => String(n)},
      ], Object.entries(r.by_category || {}), {empty: t('none')})));
  }).catch((e) => replace(out, ctx.errorBox(e)));
}
