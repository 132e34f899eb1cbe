// #/releases/R/rollout: the production rollout, live. Each wave's progress,
// each host's step, result and last message, a failing hook's output and
// the "waiting:" line, redrawn on every change without reloading the page.
//
// Changes arrive by long poll: GET .../status?wait=25&revision=N answers as
// soon as the release changed since revision N (docs/console.md). A
// coordinator whose status has no `revision` is polled once a second.

import {h, replace, table, when} from './dom.js';
import {get, q, enc} from './api.js';
import {t, tv} from './i18n.js';
import {actionBar} from './actions.js';
import {stateBadge, releaseLink} from './releases.js';

// Hosts of a wave not final yet: assigned (in progress) or not yet (pending),
// from the server's counts (the page lists only one page of the hosts).
function waveCounts(w) {
  const assigned = typeof w.assigned === 'number' ? w.assigned : w.final;
  return {pending: Math.max(0, w.hosts - assigned), inFlight: Math.max(0, assigned - w.final)};
}

// The hosts listed at once: a release of 20,000 hosts shows a page of them,
// all of them or those in one state, and its waves count every host.
const PAGE = 100;
const FILTERS = ['', 'failed', 'active', 'pending', 'succeeded'];

function bar(w, counts) {
  const total = Math.max(1, w.hosts);
  const inFlight = counts.inFlight;
  const part = (cls, n) => {
    const el = h('span', {class: `seg ${cls}`, title: String(n)});
    el.style.width = `${(100 * n) / total}%`;
    return el;
  };
  return h('div', {class: 'bar'}, part('ok', w.succeeded), part('bad', w.failed), part('run', inFlight));
}

function hostRow(x) {
  let step = x.step; let result = x.result; let message = x.message; let output = x.output;
  if (x.rollback) {
    step = `${t('rollback')}: ${x.rollback.step}`;
    if (x.rollback.message) message = x.rollback.message;
    if (x.rollback.output) output = x.rollback.output;
  }
  return {host: x.host, wave: x.wave, step, result, rollbackResult: x.rollback && x.rollback.result, message, output,
    deployment: x.deployment};
}

// Why a host's install failed: its `failed` event (step and message), from
// the host's timeline in the release; asked once per deployment.
const FINE = ['', 'succeeded'];
async function failureOf(id, host, deployment) {
  const timeline = await get(`/api/v1/releases/${enc(id)}/hosts/${enc(host)}`);
  for (const d of timeline.deployments || []) {
    if (d.id !== deployment && d.deployment !== deployment) continue;
    const failed = (d.events || []).filter((e) => e.step === 'failed').pop();
    if (failed) return `${failed.failed_step || ''}: ${failed.message || ''}`;
  }
  return '';
}

// The go-live plan's checks on metrics: each wave's verdict and its last
// measurements (value, or why there was none), newest last.
function checksSection(s) {
  const checks = s.checks || [];
  if (checks.length === 0) return null;
  const taken = (c) => (s.measurements || []).filter((m) => m.check === c.name && m.wave === c.wave).slice(-12);
  const value = (m) => h('span', {class: `measure m-${m.outcome}`, dataset: {outcome: m.outcome},
    title: `${when(m.at)} ${m.detail || ''}`}, m.value === null || m.value === undefined ? '∅' : String(m.value));
  return h('section', {class: 'card', id: 'checks'}, h('h2', {}, t('checks')), table([
    {label: t('check'), cell: (c) => [h('strong', {}, c.name), ' ', h('span', {class: 'mono muted'}, c.condition),
      c.dry_run ? [' · ', t('check.dry_run')] : null]},
    {label: t('wave'), cell: (c) => String(c.wave)},
    {label: t('check.verdict'), cell: (c) => h('span', {class: `verdict v-${c.verdict}`}, tv('verdict', c.verdict))},
    {label: t('check.measurements'), cell: (c) => h('span', {class: 'measures'}, taken(c).flatMap((m, i) => (i ? [' ', value(m)] : [value(m)])))},
    {label: t('check.summary'), class: 'wide', cell: (c) => c.summary || ''},
  ], checks, {id: 'check-table', rowData: (c) => ({check: c.name, wave: String(c.wave), verdict: c.verdict})}));
}

export function rolloutPage(main, ctx, id) {
  let alive = true;
  let controller = null;
  let release = null;
  const head = h('div', {class: 'page-head'});
  const actions = h('div', {id: 'actions-slot'});
  const body = h('div', {id: 'rollout'}, h('p', {class: 'muted'}, t('loading')));
  const live = h('span', {class: 'live', id: 'live'}, '');
  replace(main, head, actions, body);

  const reasons = new Map();  // deployment id -> why it failed
  let lastStatus = null;
  let filter = '';
  let offset = 0;
  const show = (f, o) => { filter = f; offset = Math.max(0, o); wake(); };
  function pager(s) {
    const matching = typeof s.hosts_matching === 'number' ? s.hosts_matching : (s.hosts || []).length;
    const last = Math.min(matching, offset + PAGE);
    return h('div', {class: 'filters', id: 'host-pager'},
      FILTERS.map((f) => h('button', {type: 'button', class: f === filter ? 'btn small primary' : 'btn small',
        dataset: {filter: f || 'all'}, onclick: () => show(f, 0)}, f ? tv('host_filter', f) : t('all'))),
      h('span', {class: 'muted', id: 'host-range'},
        matching ? `${offset + 1}–${last} / ${matching}` : '0'),
      h('button', {type: 'button', class: 'btn small', dataset: {page: 'prev'}, disabled: offset === 0,
        onclick: () => show(filter, offset - PAGE)}, '‹'),
      h('button', {type: 'button', class: 'btn small', dataset: {page: 'next'}, disabled: last >= matching,
        onclick: () => show(filter, offset + PAGE)}, '›'));
  }
  function explain(s) {
    for (const x of s.hosts || []) {
      if (!x.deployment || FINE.includes(x.result) || reasons.has(x.deployment)) continue;
      reasons.set(x.deployment, '');
      failureOf(id, x.host, x.deployment).then((why) => {
        reasons.set(x.deployment, why);
        if (alive && why && lastStatus) draw(lastStatus);
      }).catch(() => reasons.delete(x.deployment));
    }
  }

  function draw(s) {
    lastStatus = s;
    replace(head,
      h('h1', {}, releaseLink(id), ' ', release ? (release.plan.title || '') : '', ' — ', t('rollout.title')),
      h('span', {id: 'release-state'}, stateBadge(s.state)), live);
    replace(actions, release ? actionBar({...release, state: s.state}, ctx.session, s, refreshRelease) : null);
    if (!s.rollout) {
      replace(body, h('p', {class: 'muted', id: 'no-rollout'}, t('rollout.none')));
      return;
    }
    const hosts = (s.hosts || []).map(hostRow);
    const counts = new Map((s.waves || []).map((w) => [w.wave, waveCounts(w)]));
    replace(body,
      s.waiting ? h('p', {class: 'waiting', id: 'waiting'}, `${t('waiting')}: ${s.waiting}`) : null,
      h('p', {class: 'muted'}, `${t('started')}: ${when(s.rollout.started)} · ${t('finished')}: ${when(s.rollout.finished)}`),
      h('div', {class: 'waves', id: 'waves'}, (s.waves || []).map((w) =>
        h('div', {class: `wave card wave-${w.state}`, dataset: {wave: String(w.wave), state: w.state}},
          h('div', {class: 'wave-head'}, h('strong', {}, `${t('wave')} ${w.wave}`), ' ',
            h('span', {class: `badge wave-${w.state}`}, tv('wave_state', w.state))),
          bar(w, counts.get(w.wave)),
          h('div', {class: 'wave-counts'},
            h('span', {class: 'ok', dataset: {count: 'succeeded'}}, `${t('succeeded')} ${w.succeeded}`), ' · ',
            h('span', {class: 'bad', dataset: {count: 'failed'}}, `${t('failed')} ${w.failed}`), ' · ',
            h('span', {dataset: {count: 'in_flight'}}, `${t('in_flight')} ${counts.get(w.wave).inFlight}`), ' · ',
            h('span', {dataset: {count: 'pending'}}, `${t('pending')} ${counts.get(w.wave).pending}`), ' · ',
            h('span', {}, `${t('hosts')} ${w.hosts}`), ' · ',
            h('span', {}, `${t('threshold')} ${w.threshold}`))))),
      checksSection(s),
      pager(s),
      table([
        {label: t('host'), cell: (x) => h('a', {href: `#/hosts/${enc(x.host)}`}, x.host)},
        {label: t('wave'), cell: (x) => String(x.wave)},
        {label: t('step'), cell: (x) => x.step},
        {label: t('result'), cell: (x) => [x.result ? h('span', {class: `result ${x.result}`}, tv('result', x.result)) : '—',
          x.rollbackResult ? [' · ', t('rollback'), ' ', tv('result', x.rollbackResult)] : null]},
        {label: t('message'), class: 'wide', cell: (x) => [
          reasons.get(x.deployment) ? h('div', {class: 'reason bad'}, `${t('failed')} — ${reasons.get(x.deployment)}`) : null,
          x.message || '',
          x.output ? h('pre', {class: 'out hook-output'}, x.output) : null]},
      ], hosts, {id: 'rollout-hosts', rowData: (x) => ({host: x.host})}),
      (s.not_in_release || []).length ? h('section', {class: 'card'}, h('h2', {}, t('not_in_release')),
        table([{label: t('host'), cell: (x) => x.host}, {label: t('note'), cell: (x) => x.reason}], s.not_in_release)) : null);
  }

  async function refreshRelease() {
    try { release = await get(`/api/v1/releases/${enc(id)}`); } catch (e) { /* the status shows what it can */ }
    wake();
  }

  let wakeUp = null;
  let asked = '';  // the page and filter the revision below belongs to
  function wake() { if (controller) controller.abort(); if (wakeUp) wakeUp(); }
  const pause = (ms) => new Promise((resolve) => { wakeUp = resolve; setTimeout(resolve, ms); });

  async function loop() {
    try { release = await get(`/api/v1/releases/${enc(id)}`); } catch (e) {
      replace(body, ctx.errorBox(e));
      return;
    }
    let revision = null;
    let lastState = release.state;
    while (alive) {
      controller = new AbortController();
      const page = {hosts: filter, host_offset: offset || undefined, host_limit: PAGE};
      // Another page or filter is answered at once, not at the next change.
      if (JSON.stringify(page) !== asked) revision = null;
      asked = JSON.stringify(page);
      const longPoll = revision !== null;
      try {
        const s = await get(`/api/v1/releases/${enc(id)}/status${q(longPoll ? {...page, wait: 25, revision} : page)}`,
          {signal: controller.signal});
        if (!alive) return;
        if (s.state !== lastState) {
          lastState = s.state;
          try { release = await get(`/api/v1/releases/${enc(id)}`); } catch (e) { /* keep the old one */ }
        }
        draw(s);
        explain(s);
        live.textContent = `${t('live')} ${when(Date.now() / 1000)}`;
        if (typeof s.revision === 'number') {
          revision = s.revision;
        } else {
          revision = null;
          await pause(1000);  // no long poll on this coordinator: poll
        }
      } catch (e) {
        if (!alive) return;
        if (e.name !== 'AbortError') {
          replace(actions, ctx.errorBox(e));
          await pause(1000);
        }
      }
    }
  }
  loop();
  return () => { alive = false; if (controller) controller.abort(); if (wakeUp) wakeUp(); };
}
