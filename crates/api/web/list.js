// The conversation list: direct conversations and groups, the most recent on top, each with its
// last message and unread badge. Fetched at login and after each (re)connect; from then on it
// follows the socket's events (no polling). Items are keyed "u:<peer id>" or "g:<group id>".

import { api } from '/assets/api.js';
import { groupKey, peerKey } from '/assets/conversation.js';
import { el, formatShort, initial } from '/assets/dom.js';

/** Shows an element with `text`, or hides it when there is none. */
export function showMessage(node, text) {
  node.textContent = text ?? '';
  node.hidden = !text;
}

/** The online dot of a peer: true, false, or null (not known). */
export function presenceDot(node, online, nick) {
  node.dataset.online = online === null ? 'unknown' : String(online);
  node.hidden = online === null;
  node.title = online ? `${nick} is online` : `${nick} is offline`;
  node.textContent = online ? 'online' : 'offline'; // read out; drawn as a dot
}

export class ConversationList {
  /**
   * ui: {list, listEmpty, listError}; ctx (the app's view of the rest):
   *   me()                  the logged-in user, or null
   *   activeKey()           the open conversation's key, or null
   *   reading()             the open conversation is seen (its badge shows 0)
   *   onlineOf(peerId)      true, false or null
   *   typingLine(key)       what to show instead of the last message while someone types, or null
   *   lastLine(item)        the text of a group item's last message (sender, system text)
   *   open(item)            the user chose the item
   *   merged(item)          an item came from the server (positions to hand to the open conversation)
   *   refreshed()           the server's list was merged
   */
  constructor({ ui, ctx }) {
    this.ui = ui;
    this.ctx = ctx;
    this.items = new Map(); // key -> {key, peer | group, last_message, last_seq, read_seq, peer_read_seq, unread, rank}
    this.rank = 0; // the next item rank: newest conversation on top
    this.online = new Map(); // peer id -> {online, at}
    this.nodes = new Map(); // key -> <li>
    this.busy = false;
    this.again = false;
  }

  clear() {
    this.items.clear();
    this.online.clear();
    this.nodes.clear();
    this.ui.list.replaceChildren();
    this.ui.listEmpty.hidden = true;
  }

  get(key) {
    return this.items.get(key);
  }

  /** The list from the server (at login and after each reconnect), merged with what the events told. */
  async refresh() {
    if (!this.ctx.me()) return;
    if (this.busy) {
      this.again = true; // what changed meanwhile may have missed the request in flight
      return;
    }
    this.busy = true;
    this.again = false;
    const asked = Date.now();
    try {
      const items = await api.conversations();
      if (!this.ctx.me()) return;
      showMessage(this.ui.listError, null);
      this.merge(Array.isArray(items) ? items : [], asked);
    } catch (e) {
      if (e.status !== 401) showMessage(this.ui.listError, `Could not load conversations: ${e.message}`);
    } finally {
      this.busy = false;
      if (this.again) this.refresh();
    }
  }

  merge(items, asked) {
    // newest first from the server; what the events moved since stays where they put it
    const fresh = new Set();
    let rank = this.rank + items.length;
    for (const it of items) {
      if (!it || !(it.peer || it.group)) continue;
      const key = it.peer ? peerKey(it.peer.id) : groupKey(it.group.id);
      fresh.add(key);
      const old = this.items.get(key);
      const item = {
        key,
        peer: it.peer ?? null,
        group: it.group ? { ...it.group } : null,
        last_message: it.last_message ?? null,
        last_seq: Number(it.last_seq) || 0,
        read_seq: Number(it.read_seq) || 0,
        peer_read_seq: Number(it.peer_read_seq) || 0,
        unread: Number(it.unread) || 0,
        rank: rank--,
      };
      if (old) {
        // positions only grow: an event newer than this answer keeps its word
        if (old.last_seq > item.last_seq) {
          item.last_seq = old.last_seq;
          item.last_message = old.last_message;
          item.rank = Math.max(item.rank, old.rank);
          if (item.group) item.unread = old.unread;
        }
        item.read_seq = Math.max(item.read_seq, old.read_seq);
        item.peer_read_seq = Math.max(item.peer_read_seq, old.peer_read_seq);
      }
      // a direct conversation's position moves with my sends: what is after it is unread; a
      // group's does not (its count, from the server, is what the others sent after it)
      if (item.peer) item.unread = item.last_seq - item.read_seq;
      item.unread = Math.max(0, Math.min(item.unread, item.last_seq - item.read_seq));
      this.items.set(key, item);
      if (item.peer) {
        const seen = this.online.get(item.peer.id);
        if (typeof it.online === 'boolean' && !(seen && seen.at > asked)) {
          this.online.set(item.peer.id, { online: it.online, at: asked });
        }
      }
      this.ctx.merged(item);
    }
    this.rank += items.length + 1;
    // a conversation this tab learnt of after the request was answered stays too
    for (const [key, item] of this.items) if (!fresh.has(key) && !item.local) this.items.delete(key);
    this.render();
    this.ctx.refreshed();
  }

  /**
   * A stored message of the conversation `key` (pushed, or the reply to my send): the item
   * moves to the top with it. `known`: {peer} or {group: {id, name, member_count}} when the
   * item is new and that much is known (else the list is asked for).
   */
  noteMessage(key, m, known = null) {
    const me = this.ctx.me();
    let item = this.items.get(key);
    if (!item) {
      // A new conversation. The message does not name it all, and the server's list has the
      // rest (presence, positions): ask for it once; meanwhile show what is known.
      this.refresh();
      if (!known) return;
      item = {
        key,
        peer: known.peer ?? null,
        group: known.group ? { ...known.group } : null,
        last_message: null,
        last_seq: 0,
        read_seq: 0,
        peer_read_seq: 0,
        unread: 0,
        rank: 0,
        local: true,
      };
      this.items.set(key, item);
    }
    if (m.seq > item.last_seq) {
      // in a group only the others' messages count; in a direct conversation my send moves my position
      if (m.from !== me.id && m.seq > item.read_seq) item.unread += 1;
      item.last_seq = m.seq;
      item.last_message = m;
    } else if (m.seq === item.last_seq) {
      item.last_message = m;
    }
    if (item.peer) {
      if (m.from === me.id) item.read_seq = Math.max(item.read_seq, m.seq);
      item.unread = Math.max(0, item.last_seq - item.read_seq);
    }
    item.rank = ++this.rank;
    this.render();
  }

  /** A group this tab just created: listed at once (its first message follows on the socket). */
  addGroup(view) {
    const key = groupKey(view.id);
    if (this.items.has(key)) return;
    this.items.set(key, {
      key,
      peer: null,
      group: { id: view.id, name: view.name, member_count: view.member_count },
      last_message: null,
      last_seq: 0,
      read_seq: 0,
      peer_read_seq: 0,
      unread: 0,
      rank: ++this.rank,
      local: true,
    });
    this.render();
  }

  /** My read position in `key` moved (a receipt of this tab or another, an unread page). */
  noteRead(key, seq) {
    const item = this.items.get(key);
    if (item) {
      item.read_seq = Math.max(item.read_seq, seq);
      item.unread = Math.max(0, Math.min(item.unread, item.last_seq - item.read_seq));
      if (item.peer) item.unread = Math.max(0, item.last_seq - item.read_seq);
    }
    this.render();
  }

  /** The peer has read my messages up to `seq`. */
  notePeerRead(key, seq) {
    const item = this.items.get(key);
    if (item) item.peer_read_seq = Math.max(item.peer_read_seq, seq);
  }

  /** A group's name or size changed. */
  updateGroup(id, fields) {
    const item = this.items.get(groupKey(id));
    if (!item?.group) return;
    Object.assign(item.group, fields);
    this.render();
  }

  remove(key) {
    if (this.items.delete(key)) this.render();
  }

  setOnline(peerId, online) {
    this.online.set(peerId, { online, at: Date.now() });
    this.render();
  }

  /** true, false, or null when not known (no conversation with them yet). */
  onlineOf(peerId) {
    return this.online.get(peerId)?.online ?? null;
  }

  focusItem(key) {
    this.nodes.get(key)?.querySelector('button')?.focus();
  }

  createItem(key) {
    const parts = {
      avatar: el('span', { className: 'avatar', attrs: { 'aria-hidden': 'true' } }),
      presence: el('span', { className: 'presence sr-text', dataset: { testid: 'presence-dot' } }),
      nick: el('strong', { className: 'conv-nick', dataset: { testid: 'conversation-nick' } }),
      user: el('span', { className: 'conv-user muted' }),
      time: el('time', { className: 'conv-time muted' }),
      last: el('span', { className: 'conv-last', dataset: { testid: 'conversation-last' } }),
      count: el('span'),
      badge: null,
    };
    parts.badge = el('span', { className: 'badge', dataset: { testid: 'unread-badge' } }, [
      parts.count,
      el('span', { className: 'sr-only' }, ' unread'),
    ]);
    const button = el('button', { type: 'button', className: 'conv', dataset: { testid: 'conversation-item' } }, [
      el('span', { className: 'avatar-wrap' }, [parts.avatar, parts.presence]),
      el('span', { className: 'conv-body' }, [
        el('span', { className: 'conv-top' }, [parts.nick, parts.user, parts.time]),
        el('span', { className: 'conv-bottom' }, [parts.last, parts.badge]),
      ]),
    ]);
    button.addEventListener('click', () => {
      const item = this.items.get(key);
      if (item) this.ctx.open(item);
    });
    const li = el('li', { dataset: { key } }, [button]);
    li._parts = parts;
    li._button = button;
    return li;
  }

  fillItem(li, item) {
    const { peer, group, last_message: last } = item;
    const me = this.ctx.me();
    const p = li._parts;
    const b = li._button;
    b.dataset.kind = group ? 'group' : 'direct';
    if (peer) {
      b.dataset.userName = peer.user_name;
      b.dataset.peerId = String(peer.id);
      p.avatar.textContent = initial(peer.nick_name);
      p.nick.textContent = peer.nick_name;
      p.user.textContent = '@' + peer.user_name;
      presenceDot(p.presence, this.onlineOf(peer.id), peer.nick_name);
    } else {
      b.dataset.groupId = String(group.id);
      b.dataset.groupName = group.name;
      p.avatar.textContent = initial(group.name);
      p.avatar.classList.add('group');
      p.nick.textContent = group.name;
      p.user.textContent = `${group.member_count} ${group.member_count === 1 ? 'member' : 'members'}`;
      p.presence.hidden = true;
    }
    const typing = this.ctx.typingLine(item.key);
    b.dataset.typing = String(Boolean(typing));
    if (typing) {
      p.last.textContent = typing;
    } else if (last) {
      const text = group ? this.ctx.lastLine(item) : (last.from === me.id ? 'You: ' : '') + last.content;
      p.last.textContent = text.replace(/\s+/g, ' ');
    } else {
      p.last.textContent = '';
    }
    p.last.classList.toggle('system', !typing && last?.kind === 'system');
    if (last) {
      p.time.dateTime = last.created_at;
      p.time.textContent = formatShort(last.created_at);
    } else {
      p.time.textContent = '';
    }
    // the open conversation, while it is seen, is being read: what arrives is marked read
    const n = item.key === this.ctx.activeKey() && this.ctx.reading() ? 0 : Number(item.unread) || 0;
    p.badge.dataset.count = String(n);
    p.badge.hidden = n === 0;
    p.count.textContent = n > 99 ? '99+' : String(n);
    b.classList.toggle('has-unread', n > 0);
  }

  render() {
    if (!this.ctx.me()) return;
    const { list, listEmpty } = this.ui;
    const items = [...this.items.values()].sort((a, b) => b.rank - a.rank);
    const focused = document.activeElement;
    const keep = new Set();
    let prev = null;
    let unreadTotal = 0;
    for (const item of items) {
      keep.add(item.key);
      let li = this.nodes.get(item.key);
      if (!li) {
        li = this.createItem(item.key);
        this.nodes.set(item.key, li);
      }
      this.fillItem(li, item);
      unreadTotal += Number(li._parts.badge.dataset.count) || 0;
      const want = prev ? prev.nextSibling : list.firstChild;
      if (li !== want) list.insertBefore(li, want);
      prev = li;
    }
    for (const [key, li] of this.nodes) {
      if (!keep.has(key)) {
        li.remove();
        this.nodes.delete(key);
      }
    }
    listEmpty.hidden = keep.size > 0;
    if (focused && focused !== document.activeElement && list.contains(focused)) focused.focus({ preventScroll: true });
    document.title = unreadTotal > 0 ? `(${unreadTotal}) Chat` : 'Chat';
    this.markActive();
  }

  markActive() {
    const activeKey = this.ctx.activeKey();
    for (const [key, li] of this.nodes) {
      if (key === activeKey) li._button.setAttribute('aria-current', 'true');
      else li._button.removeAttribute('aria-current');
    }
  }
}
