// Small DOM helpers. Every text goes in as a text node (never as HTML), so
// nothing a release plan, a host or a hook printed can run in the page; and
// the page has no inline style or script (the coordinator's
// Content-Security-Policy forbids both).

// h('a', {href: '#/x', class: 'btn', onclick: fn}, 'text', child, ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A table: columns [{label, cell: row => node|text, class?}], rows.
export function table(columns, rows, options = {}) {
  return h('table', {class: options.class || 'grid', id: options.id},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {class: c.class}, c.label)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', {colspan: columns.length, class: 'empty'}, options.empty || '—'))
      : rows.map((row) => h('tr', {dataset: options.rowData ? options.rowData(row) : undefined},
        columns.map((c) => h('td', {class: c.class}, c.cell(row)))))));
}

// "2026-12-05T19:12:13Z" (or {unix, utc}) as local "2026-12-05 20:12".
export function when(value) {
  if (value === undefined || value === null || value === '') return '—';
  let date;
  if (typeof value === 'object' && 'unix' in value) date = new Date(value.unix * 1000);
  else if (typeof value === 'number') date = new Date(value * 1000);
  else date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
         `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
