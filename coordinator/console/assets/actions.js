// The buttons of a release: exactly the verbs this person may use now,
// given their role, the release's state and whether they own it or review
// it (coordinator/release/workflow.cpp's transition table; docs/api.md).
// The server decides in the end: a refusal is shown with its message.
// Each verb that needs a reason or a comment asks for it in a dialog.

import {h, replace} from './dom.js';
import {post, enc} from './api.js';
import {t} from './i18n.js';

const RM = 'release_manager';
const ADMIN = 'admin';
const APPROVER = 'approver';
const BEFORE_DEPLOYING = ['draft', 'in_review', 'approved', 'testing', 'accepted', 'scheduled'];
const STEERS = [RM, APPROVER, ADMIN];

const reason = {name: 'reason', label: 'needs.reason', kind: 'textarea', required: true};
const comment = {name: 'comment', label: 'needs.comment', kind: 'textarea'};

function decidedThisRound(r, user) {
  return (r.approvals || []).some((d) => d.reviewer === user && d.round === r.review_round);
}

// A failed host a retry would deploy again (the rollout's status).
function hasFailedHosts(status) {
  return !!status && (status.waves || []).some((w) => w.failed > 0);
}

// The latest pre-flight round (r.preflight, set by the release page) has a
// host that would fail, and nobody overrode it.
function preflightBlocks(r) {
  return !!r.preflight && r.preflight.would_fail > 0 && !r.preflight.override;
}

const PREFLIGHT_STATES = ['draft', 'in_review', 'approved', 'testing', 'accepted', 'scheduled'];

function waitsAtGate(status) {
  const waiting = (status && status.waiting) || '';
  return /control point|release gate/.test(waiting);
}

// id: the API's verb (POST /api/v1/releases/{id}/<path>, or `path`), label: the action's words.
const ACTIONS = [
  {id: 'submit', label: 'action.submit', roles: [RM, ADMIN], states: ['draft'],
    may: (r, s) => s.role === ADMIN || r.owner === s.user},
  {id: 'approve', label: 'action.approve', roles: [APPROVER], states: ['in_review'], fields: [comment],
    may: (r, s) => r.owner !== s.user && (r.plan.reviewers || []).includes(s.user) && !decidedThisRound(r, s.user)},
  {id: 'reject', label: 'action.reject', roles: [APPROVER], states: ['in_review'],
    fields: [{...comment, label: 'needs.comment_required', required: true}],
    may: (r, s) => r.owner !== s.user && (r.plan.reviewers || []).includes(s.user)},
  {id: 'test', label: 'action.test-deploy', roles: [RM, ADMIN, 'tester'], states: ['approved', 'testing']},
  {id: 'test-report', label: 'action.test-report', roles: ['tester'], states: ['approved', 'testing'],
    fields: [{name: 'result', label: 'test.result', kind: 'select', options: ['passed', 'failed'], family: 'test_result'},
      {name: 'report', label: 'test.report', kind: 'textarea', required: true}]},
  {id: 'accept', label: 'action.accept', roles: [APPROVER], states: ['approved', 'testing'],
    fields: (r) => r.plan.category === 'emergency'
      ? [comment, {name: 'waive_test', label: 'waive_test', kind: 'checkbox'},
        {name: 'reason', label: 'reason', kind: 'textarea'}]
      : [comment]},
  {id: 'approve-golive', label: 'action.approve-golive', roles: [APPROVER],
    states: ['approved', 'testing', 'accepted'], fields: [comment],
    may: (r, s) => r.owner !== s.user && !!r.plan.golive && !r.golive_approved},
  {id: 'schedule', label: 'action.schedule', roles: [RM, ADMIN], states: ['accepted']},
  {id: 'start', label: 'action.start-rollout', roles: [RM, ADMIN], states: ['scheduled']},
  {id: 'gate', label: 'action.gate', roles: STEERS, states: ['deploying'], fields: [comment],
    extra: {confirm: true}, may: (r, s, status) => waitsAtGate(status)},
  {id: 'pause', label: 'action.pause', roles: STEERS, states: ['deploying'], fields: [reason]},
  {id: 'resume', label: 'action.resume', roles: STEERS, states: ['paused', 'failed'], fields: [comment]},
  {id: 'retry', label: 'action.retry', roles: STEERS, states: ['failed', 'deployed'], fields: [reason],
    may: (r, s, status) => hasFailedHosts(status)},
  {id: 'preflight', label: 'action.preflight', roles: STEERS, states: PREFLIGHT_STATES},
  {id: 'preflight-override', path: 'preflight', label: 'action.preflight-override', roles: [APPROVER, ADMIN],
    states: PREFLIGHT_STATES, fields: [reason], extra: {override: true}, danger: true,
    may: (r) => preflightBlocks(r)},
  {id: 'abort', label: 'action.abort', roles: STEERS, states: ['deploying', 'paused'], fields: [reason], danger: true},
  {id: 'rollback', label: 'action.rollback', roles: STEERS, states: ['deploying', 'paused', 'failed'],
    fields: [reason], danger: true},
  {id: 'close', label: 'action.close', roles: [RM, ADMIN], states: ['deployed', 'failed', 'rolled_back'],
    fields: [{name: 'code', label: 'close.code', kind: 'select', family: 'close_code',
      options: ['', 'success', 'partial', 'failed', 'rolled_back']},
    {name: 'notes', label: 'close.notes', kind: 'textarea'}]},
  {id: 'cancel', label: 'action.cancel', roles: [RM, ADMIN], states: BEFORE_DEPLOYING, fields: [reason], danger: true},
];

// The verbs `session` may use on release `r` now (`status`: its rollout, if known).
export function actionsFor(r, session, status) {
  return ACTIONS.filter((a) => a.roles.includes(session.role) && a.states.includes(r.state) &&
    (!a.may || a.may(r, session, status)));
}

// The bar of buttons; `done` runs after a verb succeeded.
export function actionBar(r, session, status, done) {
  const list = actionsFor(r, session, status);
  if (list.length === 0) return null;
  return h('div', {class: 'actions', id: 'actions'}, list.map((a) =>
    h('button', {class: `btn ${a.danger ? 'danger' : 'primary'}`, dataset: {action: a.id},
      onclick: () => openDialog(r, a, done)}, t(a.label))));
}

function field(f) {
  const label = t(f.label);
  let input;
  if (f.kind === 'textarea') {
    input = h('textarea', {name: f.name, rows: 3, required: f.required});
  } else if (f.kind === 'select') {
    input = h('select', {name: f.name}, f.options.map((o) =>
      h('option', {value: o}, o === '' ? '—' : t(`${f.family}.${o}`))));
  } else if (f.kind === 'checkbox') {
    input = h('input', {name: f.name, type: 'checkbox'});
    return h('label', {class: 'check'}, input, label);
  } else {
    input = h('input', {name: f.name, required: f.required});
  }
  return h('label', {}, label, input);
}

function openDialog(r, a, done) {
  const dialog = document.getElementById('dialog');
  const fields = typeof a.fields === 'function' ? a.fields(r) : (a.fields || []);
  const status = h('div', {class: 'dialog-status'});
  const confirm = h('button', {class: `btn ${a.danger ? 'danger' : 'primary'}`, type: 'submit',
    dataset: {confirm: a.id}}, t(a.label));
  const form = h('form', {method: 'dialog', class: 'dialog-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = {...(a.extra || {})};
    for (const f of fields) {
      const el = form.elements[f.name];
      if (f.kind === 'checkbox') body[f.name] = el.checked;
      else if (el.value.trim() !== '' || f.required) body[f.name] = el.value;
    }
    confirm.disabled = true;
    replace(status);
    try {
      await post(`/api/v1/releases/${enc(r.id)}/${a.path || a.id}`, body);
      dialog.close();
      done();
    } catch (err) {
      confirm.disabled = false;
      replace(status, h('div', {class: 'error', role: 'alert'}, err.message));
    }
  }},
  h('h2', {}, `${t(a.label)} — ${r.id}`),
  fields.map(field),
  status,
  h('div', {class: 'dialog-buttons'},
    h('button', {class: 'btn', type: 'button', dataset: {dismiss: '1'}, onclick: () => dialog.close()}, t('cancel')),
    confirm));
  replace(dialog, form);
  dialog.showModal();
  const first = form.querySelector('textarea, input, select');
  if (first) first.focus();
}
