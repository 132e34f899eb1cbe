// #/hosts: enrolled hosts with labels, last seen, agent and applications.
// #/hosts/NAME: one host as a configuration item, with its upgrade history.
// #/outbox: the outward deliveries (CMDB connectors, notices).

import {h, replace, table, when} from './dom.js';
import {get, q, enc} from './api.js';
import {t, tv} from './i18n.js';
import {releaseLink} from './releases.js';

function labels(l) {
  return h('span', {class: 'labels'}, Object.entries(l || {}).map(([k, v]) => h('span', {class: 'label'}, `${k}=${v}`)));
}

function apps(list) {
  return (list || []).map((a) => h('div', {class: 'app'}, h('strong', {}, a.name), ' ', a.current || '—'));
}

// A fleet of thousands is listed a page at a time (the API's offset, limit
// and total), narrowed by labels or by a part of the name.
const PAGE = 100;

export function hostsPage(main, ctx) {
  const selector = ctx.query.get('selector') || '';
  const name = ctx.query.get('name') || '';
  const offset = Math.max(0, Number(ctx.query.get('offset')) || 0);
  const list = h('div', {}, h('p', {class: 'muted'}, t('loading')));
  const input = h('input', {name: 'selector', value: selector, placeholder: 'env=production,app=…'});
  const nameInput = h('input', {name: 'name', value: name, placeholder: 'web-'});
  const go = (o) => { location.hash = `#/hosts${q({selector: input.value.trim(), name: nameInput.value.trim(), offset: o || undefined})}`; };
  replace(main, h('h1', {}, t('hosts.title')),
    h('form', {class: 'filters', onsubmit: (e) => { e.preventDefault(); go(0); }},
      h('label', {}, t('selector'), input), h('label', {}, t('name'), nameInput),
      h('button', {class: 'btn', type: 'submit'}, t('filter'))),
    list);
  get(`/api/v1/hosts${q({selector, name, offset: offset || undefined, limit: PAGE})}`).then((body) => {
    const total = typeof body.total === 'number' ? body.total : (body.hosts || []).length;
    const last = Math.min(total, offset + PAGE);
    replace(list, h('div', {class: 'filters', id: 'hosts-pager'},
      h('span', {class: 'muted', id: 'hosts-range'}, total ? `${offset + 1}–${last} / ${total}` : '0'),
      h('button', {type: 'button', class: 'btn small', dataset: {page: 'prev'}, disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE))}, '‹'),
      h('button', {type: 'button', class: 'btn small', dataset: {page: 'next'}, disabled: last >= total, onclick: () => go(offset + PAGE)}, '›')),
    table([
      {label: t('host'), cell: (x) => h('a', {href: `#/hosts/${enc(x.name)}`}, x.name)},
      {label: t('labels'), cell: (x) => labels(x.labels)},
      {label: t('last_seen'), cell: (x) => when(x.last_seen)},
      {label: t('agent_version'), cell: (x) => x.agent_version || '—'},
      {label: t('apps'), cell: (x) => apps(x.apps)},
    ], body.hosts || [], {id: 'hosts', empty: t('none'), rowData: (x) => ({host: x.name})}));
  }).catch((e) => replace(list, ctx.errorBox(e)));
}

export function hostPage(main, ctx, name) {
  replace(main, h('p', {class: 'muted'}, t('loading')));
  get(`/api/v1/cmdb/hosts/${enc(name)}`).then((x) => {
    const inv = x.inventory || {};
    replace(main,
      h('div', {class: 'page-head'}, h('h1', {id: 'host-name'}, x.name || name),
        x.removed ? h('span', {class: 'badge state-cancelled'}, t('removed')) : null),
      h('div', {class: 'cols'},
        h('section', {class: 'card'}, h('h2', {}, t('inventory')), h('dl', {class: 'facts'},
          [[t('labels'), labels(x.labels)], [t('last_seen'), when(x.last_seen)], [t('enrolled'), when(x.enrolled)],
            [t('agent_version'), x.agent_version || '—'],
            ...Object.entries(inv).filter(([k, v]) => typeof v !== 'object' && k !== 'agent_version').map(([k, v]) => [k, String(v)])]
            .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
        h('section', {class: 'card'}, h('h2', {}, t('apps')), table([
          {label: t('name'), cell: (a) => a.name},
          {label: t('version'), cell: (a) => a.current || '—'},
          {label: t('releases.title'), cell: (a) => (a.releases || []).join(', ')},
        ], x.apps || inv.apps || [], {empty: t('none')}))),
      h('section', {class: 'card'}, h('h2', {}, t('upgrades')), table([
        {label: t('at'), cell: (u) => when(u.finished || u.started || u.at)},
        {label: t('release'), cell: (u) => u.release ? releaseLink(u.release) : '—'},
        {label: t('package'), cell: (u) => u.package || ''},
        {label: t('from_version'), cell: (u) => u.from || u.from_version || '—'},
        {label: t('to_version'), cell: (u) => u.to || u.to_version || '—'},
        {label: t('kind'), cell: (u) => tv('record_kind', u.kind)},
        {label: t('result'), cell: (u) => tv('result', u.result)},
      ], x.upgrades || [], {id: 'upgrades', empty: t('none')})));
  }).catch((e) => replace(main, ctx.errorBox(e)));
}

export function outboxPage(main, ctx) {
  const list = h('div', {}, h('p', {class: 'muted'}, t('loading')));
  replace(main, h('h1', {}, t('outbox.title')), list);
  get('/api/v1/cmdb/outbox?limit=200').then((body) => {
    replace(list, table([
      {label: t('at'), cell: (m) => when(m.created)},
      {label: t('connector'), cell: (m) => m.connector},
      {label: t('release'), cell: (m) => m.release ? releaseLink(m.release) : '—'},
      {label: t('state'), cell: (m) => h('span', {class: `badge delivery-${m.state}`}, tv('delivery', m.state))},
      {label: t('attempts'), cell: (m) => String(m.attempts ?? '')},
      {label: t('next_attempt'), cell: (m) => when(m.next_attempt)},
      {label: t('last_error'), cell: (m) => m.last_error || ''},
    ], body.messages || [], {id: 'outbox', empty: t('none')}));
  }).catch((e) => replace(list, ctx.errorBox(e)));
}
