// Draws an open conversation's messages: stored ones by seq, mine still waiting after them,
// each with its state (sending, delivered, stored for later, read, not sent) and Retry.

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
  const text = el('p', { className: 'msg-text', dataset: { testid: 'message-text' } });
  const time = el('time', { className: 'msg-time' });
  const state = el('span', { className: 'msg-state', dataset: { testid: 'message-state' } });
  const retry = el('button', { type: 'button', className: 'msg-retry link', hidden: true, dataset: { testid: 'retry-button' } }, 'Retry');
  retry.addEventListener('click', () => conv.retry(li.dataset.clientMsgId));
  const li = el('li', { className: 'msg', dataset: { testid: 'message' } }, [
    el('div', { className: 'bubble' }, [who, text]),
    el('div', { className: 'msg-meta' }, [time, state, retry]),
  ]);
  li._parts = { who, text, time, state, retry };
  return li;
}

function fill(conv, li, { m, l }) {
  const { who, text, time, state, retry } = li._parts;
  const mine = m ? m.from === conv.me.id : true;
  li.classList.toggle('mine', mine);
  li.classList.toggle('theirs', !mine);
  li.dataset.mine = String(mine);
  const content = m ? m.content : l.content;
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
  const st = mine ? (m ? stateOf(conv, m) : l.state) : '';
  li.dataset.state = st;
  state.dataset.state = st;
  state.textContent = st ? STATE_LABEL[st] : '';
  state.hidden = !st;
  retry.hidden = !(l && l.retry && l.state === 'failed');
  who.textContent = mine ? 'You: ' : `${conv.peer.nick_name}: `;
}
