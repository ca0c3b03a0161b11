// Small DOM helpers. Text always goes in through textContent: nothing is parsed as HTML.

/** el('button', {type: 'button', className: 'x', dataset: {testid: 'y'}}, ['text', child]) */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) node.setAttribute(a, v);
    else node[key] = value;
  }
  for (const child of [].concat(children)) {
    if (child == null) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

const sameDay = (a, b) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

function parse(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** 14:05 */
export function formatTime(iso) {
  const d = parse(iso);
  return d ? d.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' }) : '';
}

/** The full date and time, for a tooltip. */
export function formatDateTime(iso) {
  const d = parse(iso);
  return d ? d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '';
}

/** 14:05 today, else "27 Nov" (with the year when not this year). */
export function formatShort(iso) {
  const d = parse(iso);
  if (!d) return '';
  const now = new Date();
  if (sameDay(d, now)) return formatTime(iso);
  const opts = { day: 'numeric', month: 'short' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString([], opts);
}

/** The first letter of a name, for the round avatar. */
export function initial(name) {
  const first = [...(name ?? '').trim()][0];
  return first ? first.toUpperCase() : '?';
}
