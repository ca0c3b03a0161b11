// An open conversation, direct or a group's: its messages (keyed by seq), my messages not yet
// stored (keyed by client_msg_id), what the peer has read; messages.js draws them. Its frames go
// over the tab's device socket, named by "to" (a peer) or "group"; app.js routes the replies and
// events back here.

import { Code } from '/assets/socket.js';
import { renderMessages } from '/assets/messages.js';

export const MAX_CONTENT_BYTES = 4096;
const PAGE = 20;
const CATCH_UP_PAGE = 100;
const MAX_FILL_PAGES = 10;
const encoder = new TextEncoder();

export const byteLength = (text) => encoder.encode(text).length;

/** An id for a message, unique enough to make a resend idempotent (no secure context needed). */
function newClientMsgId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return 'w-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Messages typed but not yet stored, per conversation key: they survive leaving the
// conversation and are sent again (with the same client_msg_id) when it is opened again.
const outboxes = new Map();

/** Forgets every waiting message (at logout: they are this user's, not the next one's). */
export function clearOutboxes() {
  outboxes.clear();
}

/**
 * A send's reply that came after its conversation was closed: a stored message is no longer
 * waiting (sending it again would be harmless, the client_msg_id makes it idempotent).
 */
export function settleOutbox(key, cmid, frame) {
  if (frame.code !== Code.DELIVERED && frame.code !== Code.STORED) return;
  const waiting = outboxes.get(key);
  if (!waiting) return;
  const rest = waiting.filter((m) => m.cmid !== cmid);
  if (rest.length) outboxes.set(key, rest);
  else outboxes.delete(key);
}

/** The server's name of a conversation: "<lower id>:<higher id>". */
export function conversationId(a, b) {
  return a <= b ? `${a}:${b}` : `${b}:${a}`;
}

/** The client's key of a conversation (list items, outboxes): "u:<peer id>" or "g:<group id>". */
export const peerKey = (peerId) => `u:${peerId}`;
export const groupKey = (groupId) => `g:${groupId}`;

export class Conversation {
  /**
   * me, peer: {id, user_name, nick_name}; or, instead of peer, group: {id, name} (a group's
   * conversation: its members' positions come through hooks); els: the elements of the pane;
   * socket: the tab's device ChatSocket (shared: this conversation neither opens nor closes it);
   * peerReadSeq: how far the peer has read (from the list; then live);
   * hooks: { onShown() } — called when messages were added, to send a read receipt if seen;
   * in a group also { senderName(id), systemText(m), readBy(seq) → {k, n}, onNotMember() }.
   */
  constructor({ me, peer = null, group = null, els, socket, peerReadSeq = 0, hooks }) {
    this.me = me;
    this.peer = peer;
    this.group = group;
    this.els = els;
    this.socket = socket;
    this.hooks = hooks;
    this.key = peer ? peerKey(peer.id) : groupKey(group.id);
    this.address = peer ? { to: peer.id } : { group: group.id };
    this.convId = peer ? conversationId(me.id, peer.id) : `g:${group.id}`;
    this.messages = new Map(); // seq -> message
    this.ackState = new Map(); // seq -> 'delivered' | 'stored', from this tab's send replies
    this.local = new Map(); // client_msg_id -> {cmid, content, state, anchor, order, retry}
    this.nodes = new Map(); // render key -> <li>
    this.order = 0;
    this.peerReadSeq = Number(peerReadSeq) || 0; // my messages up to it are read by the peer
    this.readSent = 0; // the highest read receipt this conversation sent
    this.historyDone = false;
    this.loadingOlder = false;
    this.filling = false;
    this.loaded = false; // the first pages are in: from now on a drop only needs a catch-up
    this.catchingUp = false;
    this.lastHole = null;
    this.everConnected = false;
    this.closed = false;
    this.gone = false; // no longer a member of the group: nothing more is asked or sent

    for (const item of outboxes.get(this.key) ?? []) {
      this.local.set(item.cmid, { ...item, state: 'sending' });
      this.order = Math.max(this.order, item.order);
    }
    outboxes.delete(this.key);
  }

  open(status) {
    const { els, peer } = this;
    if (peer) {
      els.peerName.textContent = peer.nick_name;
      els.peerUserName.textContent = '@' + peer.user_name;
    } // a group's header is drawn by groups.js
    els.list.replaceChildren();
    this.clearNotice();
    this.render('bottom');
    this.onStatus(status);
    if (this.socket.isReady) this.onConnected();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    const waiting = [...this.local.values()].filter((m) => m.state === 'sending');
    if (waiting.length) outboxes.set(this.key, waiting);
    this.els.list.replaceChildren();
  }

  /** Sends a frame about this conversation; its reply comes back to onReply. */
  send(frame, request) {
    return this.socket.send({ ...frame, ...this.address }, { ...request, conv: this, key: this.key });
  }

  // ---- connection -------------------------------------------------------------------

  onStatus(status) {
    const { connection } = this.els;
    connection.dataset.status = status;
    connection.textContent =
      { connecting: 'Connecting…', open: 'Connected', reconnecting: 'Reconnecting…', closed: '' }[status] ?? '';
    if (status === 'reconnecting' && !this.gone) {
      this.notice('Connection lost. Reconnecting… Messages you send will go out once connected.', 'warn', 'reconnecting');
    }
    this.updateLoadOlder();
  }

  /** The device socket is (again) connected: load, or catch up on what came meanwhile. */
  onConnected() {
    if (this.closed) return;
    const first = !this.everConnected;
    this.everConnected = true;
    if (this.gone) return;
    if (this.els.notice.dataset.kind === 'reconnecting') {
      this.notice('Connected again.', 'info', 'reconnected');
      setTimeout(() => {
        if (!this.closed && this.els.notice.dataset.kind === 'reconnected') this.clearNotice();
      }, 4000);
    }
    this.loadingOlder = false;
    this.catchingUp = false;
    this.lastHole = null;
    this.readSent = 0; // a receipt in flight on the old socket may be lost: send it again
    if (this.loaded) {
      // What came while away, from what is held on: pages of catch-up, nothing marked read.
      this.catchUp(this.contiguousTop());
    } else {
      this.filling = true; // until the first pages are in, "Load older" waits
      // Unread first (this marks them read), then a history page for context.
      this.send({ type: 3 }, { kind: 'unread', first });
    }
    // Whatever is still waiting goes out again with its client_msg_id: stored at most once.
    for (const m of this.sortedLocal()) if (m.state === 'sending') this.transmit(m);
    this.updateLoadOlder();
  }

  // ---- frames -----------------------------------------------------------------------

  /** A message of this conversation pushed on the device socket (from the peer, or mine from another tab). */
  onMessage(message) {
    if (this.closed) return;
    this.addMessages([message]);
    this.render('auto');
    // A seq beyond the last held one means pushes were missed: ask for the gap.
    if (this.loaded && !this.catchingUp) this.fillHole();
    this.hooks.onShown();
  }

  onReply(request, frame) {
    if (this.closed) return;
    const kind = request?.kind;
    if (kind === 'send') return this.onSendReply(request, frame);
    if (frame.code === Code.NOT_MEMBER) {
      // removed from the group meanwhile: what is shown stays
      this.filling = this.loadingOlder = this.catchingUp = false;
      this.hooks.onNotMember?.();
      this.updateLoadOlder();
      return;
    }
    if (kind === 'unread') return this.onUnreadReply(request, frame);
    if (kind === 'history') return this.onHistoryReply(request, frame);
    if (kind === 'catchup') return this.onCatchUpReply(request, frame);
    if (kind === 'read') {
      // an error to a read receipt: nothing to show, the next one tries again
      if (frame.code !== Code.READ) this.readSent = 0;
      return;
    }
    // A reply we cannot pair (should not happen): keep what it carries.
    if (frame.message) this.addMessages([frame.message]);
    if (Array.isArray(frame.messages)) this.addMessages(frame.messages);
    this.render('auto');
  }

  /** The peer has read up to `seq` (a 50010 from them): my messages up to it show "Read". */
  setPeerRead(seq) {
    const n = Number(seq) || 0;
    if (n <= this.peerReadSeq) return;
    this.peerReadSeq = n;
    this.render('auto');
  }

  /** My read position moved (this tab's receipt, another tab's, or an unread page). */
  setMyRead(seq) {
    this.readSent = Math.max(this.readSent, Number(seq) || 0);
  }

  /** A read receipt for the newest message shown, unless one already covers it. */
  markRead() {
    if (this.closed || this.gone || !this.socket.isReady) return false;
    const top = this.maxSeq();
    if (top <= this.readSent) return false;
    if (!this.send({ type: 5, read_seq: top }, { kind: 'read', me: this.me.id, convId: this.convId })) return false;
    this.readSent = top;
    return true;
  }

  // ---- catch-up ---------------------------------------------------------------------

  /** Asks for the messages in a hole below the newest held one, once per hole. */
  fillHole() {
    const top = this.contiguousTop();
    if (top < this.maxSeq() && top !== this.lastHole) {
      this.lastHole = top; // a hole the server cannot fill (expired messages) is asked for once
      this.catchUp(top);
    }
  }

  catchUp(afterSeq) {
    if (this.send({ type: 4, after_seq: afterSeq, limit: CATCH_UP_PAGE }, { kind: 'catchup', after: afterSeq })) {
      this.catchingUp = true;
    }
  }

  onCatchUpReply(request, frame) {
    if (frame.code === Code.CATCH_UP) {
      const page = frame.messages ?? [];
      const before = this.messages.size;
      this.addMessages(page);
      this.render('auto');
      const last = Math.max(request.after, ...page.map((m) => m.seq));
      // oldest first, at most a page: the next one starts after the last one given
      if (frame.more && last > request.after && this.send(
        { type: 4, after_seq: last, limit: CATCH_UP_PAGE },
        { kind: 'catchup', after: last },
      )) {
        return;
      }
      this.catchingUp = false;
      // pushed meanwhile beyond a hole: once more from the hole (only if this page helped)
      if (this.messages.size > before) this.fillHole();
    } else {
      this.catchingUp = false;
      if (frame.code !== Code.END) this.notice(`Could not load new messages: ${frame.content}`, 'error');
    }
    this.hooks.onShown();
  }

  onUnreadReply(request, frame) {
    if (frame.code === Code.UNREAD) {
      this.addMessages(frame.messages ?? []);
      this.render(request.first ? 'bottom' : 'auto');
      // a page at a time: these are read now, so asking again brings the next ones
      if (frame.more && this.send({ type: 3 }, { kind: 'unread', first: request.first })) return;
    } else if (frame.code !== Code.END) {
      this.notice(`Could not load unread messages: ${frame.content}`, 'error');
    }
    // Then the newest page for context (after a drop: what came while away), and the pages
    // between it and what is already shown, so the shown messages never have a gap.
    this.fillPages = 0;
    this.requestHistory(null, 'fill', request.first);
  }

  requestHistory(beforeSeq, mode, first = false) {
    const frame = { type: 2, limit: PAGE };
    if (beforeSeq != null) frame.before_seq = beforeSeq;
    const sent = this.send(frame, { kind: 'history', mode, first });
    if (sent && mode === 'older') this.loadingOlder = true;
    this.updateLoadOlder();
    return sent;
  }

  onHistoryReply(request, frame) {
    const { mode, first } = request;
    if (mode === 'older') this.loadingOlder = false;
    if (frame.code === Code.HISTORY) {
      const page = frame.messages ?? [];
      this.addMessages(page);
      const lowest = Math.min(...page.map((m) => m.seq));
      // pages are newest first and end at before_seq: a short one reached the beginning
      if (page.length < PAGE || lowest <= 1) this.historyDone = true;
      let more = false;
      if (mode === 'fill' && !this.historyDone && !this.messages.has(lowest - 1)) {
        const below = [...this.messages.keys()].filter((seq) => seq < lowest);
        if (below.length && ++this.fillPages < MAX_FILL_PAGES) {
          more = this.requestHistory(lowest, 'fill', first);
        } else {
          // too far apart: drop the older ones; "Load older" brings them back in order
          for (const seq of below) this.messages.delete(seq);
        }
      }
      if (mode === 'fill' && !more) this.loadDone();
      this.render(mode === 'older' ? 'keep' : first ? 'bottom' : 'auto');
    } else if (frame.code === Code.END) {
      this.historyDone = true;
      this.render('keep');
    } else {
      this.notice(`Could not load history: ${frame.content}`, 'error');
    }
    if (mode === 'fill' && frame.code !== Code.HISTORY) this.loadDone();
    this.updateLoadOlder();
  }

  /** The first pages are in: what is shown is seen (a receipt if the tab has focus). */
  loadDone() {
    this.filling = false;
    this.loaded = true;
    // pushed while the pages came in, beyond what they reached: fetch the hole
    this.fillHole();
    this.hooks.onShown();
  }

  onSendReply(request, frame) {
    const item = this.local.get(request.cmid);
    switch (frame.code) {
      case Code.DELIVERED:
      case Code.STORED: {
        const msg = frame.message;
        if (!msg) return;
        this.ackState.set(msg.seq, frame.code === Code.DELIVERED ? 'delivered' : 'stored');
        this.addMessages([msg]);
        this.render('auto');
        return;
      }
      case Code.LIMIT:
        this.markFailed(item, 'refused', false);
        this.notice(
          `Not sent: ${this.peer?.nick_name ?? 'they'} has not answered yet. You can write again once they reply.`,
          'error',
          'limit',
        );
        return;
      case Code.NOT_MEMBER:
        this.markFailed(item, 'refused', false);
        this.notice('Not sent: you are no longer a member of this group.', 'error', 'not-member');
        this.hooks.onNotMember?.();
        return;
      case Code.EMPTY:
        this.markFailed(item, 'failed', false);
        this.notice('Not sent: the message is empty.', 'error', 'rejected');
        return;
      case Code.TOO_LARGE:
        this.markFailed(item, 'failed', false);
        this.notice(`Not sent: the message is too long (${frame.content}).`, 'error', 'rejected');
        return;
      case Code.RATE_LIMITED: {
        // sending too fast: it goes out again by itself once allowed
        const wait = Math.max(100, Number(frame.retry_after_ms) || 1000);
        this.notice(`Sending too fast; this one goes out in ${Math.ceil(wait / 1000)} s.`, 'warn', 'rate');
        setTimeout(() => {
          if (!this.closed && item && item.state === 'sending' && this.socket.isReady) this.transmit(item);
        }, wait);
        return;
      }
      case Code.SHUTTING_DOWN:
        // the server is restarting: the socket closes, and the reconnect sends it again
        return;
      case Code.CONFLICT:
        this.markFailed(item, 'failed', false);
        this.notice('Not sent: this message clashes with another one already sent.', 'error', 'rejected');
        return;
      case Code.UNAVAILABLE:
      case Code.BUSY:
      case Code.INTERNAL:
        this.markFailed(item, 'failed', true);
        this.notice('Not sent: the server could not store it right now. Use “Retry” to send it again.', 'error');
        return;
      default:
        this.markFailed(item, 'failed', false);
        this.notice(`Not sent: ${frame.content ?? 'the server refused it'}.`, 'error', 'rejected');
    }
  }

  markFailed(item, state, retry) {
    if (!item) return;
    item.state = state;
    item.retry = retry;
    this.render('auto');
  }

  // ---- sending ----------------------------------------------------------------------

  /** Validates and sends; returns true when the text was taken (the input may be cleared). */
  submit(text) {
    if (this.gone) return false;
    const content = text.trim();
    if (!content) {
      this.notice('Type a message first: an empty message is not sent.', 'error', 'rejected');
      return false;
    }
    const bytes = byteLength(content);
    if (bytes > MAX_CONTENT_BYTES) {
      this.notice(
        `Too long: ${bytes.toLocaleString()} bytes; a message holds at most ${MAX_CONTENT_BYTES.toLocaleString()} bytes.`,
        'error',
        'rejected',
      );
      return false;
    }
    if (['rejected', 'limit', 'reconnected', 'rate'].includes(this.els.notice.dataset.kind)) this.clearNotice();
    const item = { cmid: newClientMsgId(), content, state: 'sending', anchor: this.maxSeq(), order: ++this.order };
    this.local.set(item.cmid, item);
    this.transmit(item); // when offline it waits and goes out on reconnect
    this.render('bottom');
    return true;
  }

  transmit(item) {
    this.send({ type: 1, content: item.content, client_msg_id: item.cmid }, { kind: 'send', cmid: item.cmid });
  }

  retry(cmid) {
    const item = this.local.get(cmid);
    if (!item) return;
    item.state = 'sending';
    item.retry = false;
    this.clearNotice();
    this.transmit(item);
    this.render('auto');
  }

  loadOlder() {
    if (this.loadingOlder || this.filling || this.historyDone || this.gone || !this.socket.isReady) return;
    this.requestHistory(this.minSeq(), 'older');
  }

  /** I am no longer a member of the group (removed, left, dissolved): says so with `text`. */
  setGone(text) {
    if (this.closed) return;
    this.gone = true;
    for (const m of this.local.values()) if (m.state === 'sending') m.state = 'refused';
    this.notice(text, 'warn', 'gone');
    this.render('auto');
  }

  // ---- state ------------------------------------------------------------------------

  addMessages(list) {
    for (const m of list) {
      if (!m || typeof m.seq !== 'number') continue;
      this.messages.set(m.seq, m);
      const cmid = m.client_msg_id;
      if (cmid && m.from === this.me.id && this.local.has(cmid)) {
        // one of mine that was waiting is stored: the same bubble, now with its seq
        this.local.delete(cmid);
        const node = this.nodes.get('c:' + cmid);
        if (node) {
          this.nodes.delete('c:' + cmid);
          if (this.nodes.has('s:' + m.seq)) node.remove();
          else this.nodes.set('s:' + m.seq, node);
        }
      }
    }
  }

  minSeq() {
    let min = null;
    for (const seq of this.messages.keys()) if (min === null || seq < min) min = seq;
    return min;
  }

  maxSeq() {
    let max = 0;
    for (const seq of this.messages.keys()) if (seq > max) max = seq;
    return max;
  }

  /** The highest seq up to which the held messages have no hole (the held ones are one run). */
  contiguousTop() {
    const min = this.minSeq();
    if (min === null) return 0;
    let top = min;
    while (this.messages.has(top + 1)) top += 1;
    return top;
  }

  sortedLocal() {
    return [...this.local.values()].sort((a, b) => a.order - b.order);
  }

  // ---- rendering --------------------------------------------------------------------

  notice(text, kind = 'info', tag = kind) {
    const n = this.els.notice;
    n.textContent = text;
    n.dataset.level = kind;
    n.dataset.kind = tag;
    n.hidden = false;
  }

  clearNotice() {
    const n = this.els.notice;
    n.textContent = '';
    n.dataset.kind = '';
    n.hidden = true;
  }

  updateLoadOlder() {
    const { loadOlder, historyEnd } = this.els;
    const hasAny = this.messages.size > 0;
    loadOlder.hidden = this.historyDone || this.gone || !this.everConnected;
    loadOlder.disabled = this.loadingOlder || this.filling || !this.socket.isReady;
    loadOlder.textContent = this.loadingOlder ? 'Loading…' : 'Load older messages';
    historyEnd.hidden = !this.historyDone;
    historyEnd.textContent = hasAny ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
  }

  /** mode: 'bottom' (scroll to the newest), 'keep' (older ones added above), 'auto'. */
  render(mode) {
    if (this.closed) return;
    renderMessages(this, mode);
    this.updateLoadOlder();
  }
}
