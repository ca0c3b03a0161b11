// Draws an open conversation's messages: stored ones by seq, mine still waiting after them,
// each with its state (sending, delivered, stored for later, read, not sent) and Retry. In a
// group: the sender above each of the others' messages, the group's system messages as lines
// of their own ("Alice added Bob"), and "Read by k of n" on mine.

import { el, formatTime, formatDateTime } from '/assets/dom.js';

const STATE_LABEL = {
  sending: 'Sending…',
  read: 'Read',
  delivered: 'Delivered',
  stored: 'Stored for later',
  refused: 'Not sent',
  failed: 'Not sent',
};

function stateOf(conv, msg) {
  // read: the peer's read position covers it (live from their receipts), or stored as read
  if (msg.read || msg.seq <= conv.peerReadSeq) return 'read';
  return conv.ackState.get(msg.seq) ?? 'stored';
}

/** A stored message of mine in a group: [state, label]; read once every other member has read it. */
function groupStateOf(conv, msg) {
  const { k, n } = conv.hooks.readBy(msg.seq);
  if (n === 0) return ['sent', 'Sent'];
  return [k >= n ? 'read' : 'sent', `Read by ${k} of ${n}`];
}

/** mode: 'bottom' (scroll to the newest), 'keep' (older ones added above), 'auto'. */
export function renderMessages(conv, mode) {
  const { scroller, list } = conv.els;
  const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const oldHeight = scroller.scrollHeight;
  const oldTop = scroller.scrollTop;

  const entries = [];
  for (const m of conv.messages.values()) entries.push({ key: 's:' + m.seq, pos: [m.seq, 0, 0], m });
  for (const l of conv.local.values()) entries.push({ key: 'c:' + l.cmid, pos: [l.anchor, 1, l.order], l });
  entries.sort((a, b) => a.pos[0] - b.pos[0] || a.pos[1] - b.pos[1] || a.pos[2] - b.pos[2]);

  const keep = new Set(entries.map((e) => e.key));
  for (const [key, node] of conv.nodes) {
    if (!keep.has(key)) {
      node.remove();
      conv.nodes.delete(key);
    }
  }
  let prev = null;
  for (const e of entries) {
    let node = conv.nodes.get(e.key);
    if (!node) {
      node = createNode(conv);
      conv.nodes.set(e.key, node);
    }
    fill(conv, node, e);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (node !== want) list.insertBefore(node, want);
    prev = node;
  }

  if (mode === 'bottom' || (mode === 'auto' && nearBottom)) {
    scroller.scrollTop = scroller.scrollHeight;
  } else if (mode === 'keep') {
    scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight);
  }
}

function createNode(conv) {
  const who = el('span', { className: 'sr-only' });
  const sender = el('span', { className: 'msg-sender', hidden: true, dataset: { testid: 'message-sender' } });
  const text = el('p', { className: 'msg-text', dataset: { testid: 'message-text' } });
  const time = el('time', { className: 'msg-time' });
  const state = el('span', { className: 'msg-state', dataset: { testid: 'message-state' } });
  const retry = el('button', { type: 'button', className: 'msg-retry link', hidden: true, dataset: { testid: 'retry-button' } }, 'Retry');
  retry.addEventListener('click', () => conv.retry(li.dataset.clientMsgId));
  const li = el('li', { className: 'msg', dataset: { testid: 'message' } }, [
    el('div', { className: 'bubble' }, [who, sender, text]),
    el('div', { className: 'msg-meta' }, [time, state, retry]),
  ]);
  li._parts = { who, sender, text, time, state, retry };
  return li;
}

function fill(conv, li, { m, l }) {
  const { who, sender, text, time, state, retry } = li._parts;
  const system = m?.kind === 'system';
  const mine = !system && (m ? m.from === conv.me.id : true);
  li.classList.toggle('system', system);
  li.classList.toggle('mine', mine);
  li.classList.toggle('theirs', !mine && !system);
  li.dataset.testid = system ? 'system-message' : 'message';
  li.dataset.mine = String(mine);
  const content = system ? conv.hooks.systemText(m) : m ? m.content : l.content;
  if (text.textContent !== content) text.textContent = content; // text only: never HTML
  if (m) {
    li.dataset.seq = String(m.seq);
    if (m.client_msg_id) li.dataset.clientMsgId = m.client_msg_id;
    else delete li.dataset.clientMsgId;
    time.dateTime = m.created_at;
    time.textContent = formatTime(m.created_at);
    time.title = formatDateTime(m.created_at);
  } else {
    delete li.dataset.seq;
    li.dataset.clientMsgId = l.cmid;
    time.textContent = '';
    time.removeAttribute('datetime');
    time.title = '';
  }
  let st = '';
  let label = '';
  if (mine && m && conv.group) [st, label] = groupStateOf(conv, m);
  else if (mine) st = m ? stateOf(conv, m) : l.state;
  label ||= st ? STATE_LABEL[st] : '';
  li.dataset.state = st;
  state.dataset.state = st;
  state.textContent = label;
  state.hidden = !st;
  retry.hidden = !(l && l.retry && l.state === 'failed');
  // a group shows who wrote each of the others' messages; a direct conversation says it to screen readers
  const from = !mine && !system ? (conv.group ? conv.hooks.senderName(m.from) : conv.peer.nick_name) : '';
  const showSender = Boolean(conv.group && from);
  if (sender.textContent !== from) sender.textContent = from;
  sender.hidden = !showSender;
  if (m && conv.group && !mine) li.dataset.from = String(m.from);
  else delete li.dataset.from;
  who.textContent = mine ? 'You: ' : from && !showSender ? `${from}: ` : '';
}
