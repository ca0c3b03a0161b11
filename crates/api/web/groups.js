// Groups in the web client: what this tab knows of each group (its name, my role, the members
// and their read positions), the group side of the socket's events (system messages, typing),
// and the header of a group's conversation; its members panel is group-panel.js, its wording
// group-text.js, the conversation itself a Conversation (conversation.js), its list item the
// list's (list.js).
// The others' read positions are not pushed: they are asked for (GET /groups/{id}) when the
// group is opened, when a message arrives in it, and when the window regains focus.

import { api } from '/assets/api.js';
import { groupKey } from '/assets/conversation.js';
import { initial } from '/assets/dom.js';
import { GroupPanel } from '/assets/group-panel.js';
import { GroupText } from '/assets/group-text.js';

// How long "… is typing" shows after the last typing event (as in a direct conversation).
const TYPING_SHOWN_MS = 3500;
// The members' names seen in this tab, kept over a reload: a member who has left is listed by
// no one, yet their messages and system lines stay (cleared at logout).
const NAMES_KEY = 'chat.names';
const NAMES_KEPT = 1000;
/** A refused group is asked again after this long before it counts as left. */
const REFUSED_RETRY_MS = 500;

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const membersText = (n) => `${n} ${n === 1 ? 'member' : 'members'}`;

export class Groups {
  /**
   * ctx: me(); list (the ConversationList); conv() (the open Conversation, or null); reading()
   * (the open conversation is seen);
   * reopen(id) (opens the group's conversation afresh); leftOpen() (the open group was left:
   * back to the list).
   */
  constructor(ctx) {
    this.ctx = ctx;
    this.infos = new Map(); // group id -> {id, name, owner, member_count, my_role, members, asked, gone, goneText}
    this.names = new Map(); // user id -> {nick_name, user_name}: every member seen, for senders and system lines
    this.typing = new Map(); // group id -> Map(user id -> timer)
    this.fetching = new Map(); // group id -> {again}: one GET /groups/{id} at a time
    this.ui = {
      chat: $('chat'),
      avatar: $('peer-avatar'),
      name: $('peer-name'),
      sub: $('peer-user-name'),
      typing: $('peer-typing'),
      presence: $('peer-presence'),
      membersButton: $('members-button'),
      input: $('message-input'),
      send: $('send-button'),
    };
    this.panel = new GroupPanel(this);
    this.text = new GroupText(this.names, () => this.ctx.me());
  }

  clear() {
    for (const timers of this.typing.values()) for (const t of timers.values()) clearTimeout(t);
    this.typing.clear();
    this.infos.clear();
    this.names.clear();
    this.panel.open = false;
    try {
      sessionStorage.removeItem(NAMES_KEY);
    } catch {
      // storage disabled: nothing was kept
    }
  }

  /** The names this tab saw before a reload (the same user's). */
  loadNames() {
    try {
      const kept = JSON.parse(sessionStorage.getItem(NAMES_KEY) ?? 'null');
      if (kept?.me !== this.ctx.me().id || !Array.isArray(kept.names)) return;
      for (const [id, name] of kept.names) if (!this.names.has(id)) this.names.set(id, name);
    } catch {
      // storage disabled or the entry unreadable: the members' lists bring the names again
    }
  }

  saveNames() {
    try {
      const names = [...this.names].slice(-NAMES_KEPT);
      sessionStorage.setItem(NAMES_KEY, JSON.stringify({ me: this.ctx.me().id, names }));
    } catch {
      // storage disabled or full: they last as long as the page
    }
  }

  /** What is known of group `id` (from the list until its details come). */
  info(id) {
    let info = this.infos.get(id);
    if (!info) {
      const item = this.ctx.list.get(groupKey(id));
      info = { id, name: item?.group?.name ?? '', owner: null, member_count: item?.group?.member_count ?? 0 };
      Object.assign(info, { my_role: null, members: null, asked: false, gone: null, goneText: '' });
      this.infos.set(id, info);
    }
    return info;
  }

  openConv(id) {
    const conv = this.ctx.conv();
    return conv?.group?.id === id ? conv : null;
  }

  /** The hooks a group's Conversation draws its messages with. */
  hooksFor(id) {
    return {
      senderName: (userId) => this.senderName(id, userId),
      systemText: (m) => this.systemText(m),
      readBy: (seq) => this.readBy(id, seq),
      onNotMember: () => this.setGone(id, 'removed', 'You are not a member of this group.'),
    };
  }

  // ---- the server's view -------------------------------------------------------------

  /** The list brought a group item: its name and size. */
  merged(item) {
    const info = this.info(item.group.id);
    info.name = item.group.name;
    info.member_count = item.group.member_count;
    if (this.openConv(info.id)) this.render();
  }

  /** A GroupView (GET /groups/{id}, or the answer to a change). */
  setView(view) {
    if (!view || typeof view.id !== 'number') return;
    const info = this.info(view.id);
    Object.assign(info, { name: view.name, owner: view.owner, member_count: view.member_count, my_role: view.my_role });
    if (Array.isArray(view.members)) {
      info.members = view.members;
      for (const m of view.members) {
        this.names.delete(m.id); // the newest last: the ones kept are the most recently seen
        this.names.set(m.id, { nick_name: m.nick_name, user_name: m.user_name });
      }
      this.saveNames();
    }
    this.ctx.list.updateGroup(view.id, { name: view.name, member_count: view.member_count });
    if (this.openConv(view.id)) {
      this.render();
      this.openConv(view.id).render('auto'); // senders, system lines and "read by" may have changed
    }
  }

  /**
   * Asks for the group's members and their positions; a request in flight is asked again after.
   * A refusal (403) is asked once more a moment later before the group counts as left: the
   * message that tells of a joining can arrive a moment before the joining is recorded.
   */
  async refresh(id, retried = false) {
    const flight = this.fetching.get(id);
    if (flight) {
      flight.again = true;
      return;
    }
    const mine = { again: false, retry: false };
    this.fetching.set(id, mine);
    try {
      const view = await api.group(id);
      if (this.ctx.me()) this.setView(view);
    } catch (e) {
      if (e.status === 403 && !retried) {
        mine.retry = true;
      } else if (e.status === 403) this.setGone(id, 'removed', 'You are not a member of this group.');
      else if (e.status === 404) this.setGone(id, 'dissolved', 'This group no longer exists.');
      else if (this.openConv(id)) this.panel.error(`Could not load the members: ${e.message}`);
    } finally {
      this.fetching.delete(id);
      if (mine.retry) setTimeout(() => this.ctx.me() && this.refresh(id, true), REFUSED_RETRY_MS);
      else if (mine.again && this.ctx.me() && !this.info(id).gone) this.refresh(id);
    }
  }

  /** The window regained focus: the others may have read meanwhile. */
  onFocus() {
    const id = this.ctx.conv()?.group?.id;
    if (id != null && !this.info(id).gone) this.refresh(id);
  }

  /** The group's conversation was opened. */
  opened(conv) {
    const info = this.info(conv.group.id);
    this.panel.open = false;
    this.panel.error(null);
    if (info.gone) conv.setGone(info.goneText);
    else this.refresh(info.id);
    this.render();
  }

  /** I am no longer in the group: `why` is 'removed', 'left' or 'dissolved'. */
  setGone(id, why, text) {
    const info = this.info(id);
    if (info.gone === why) return;
    info.gone = why;
    info.goneText = text;
    const conv = this.openConv(id);
    if (why === 'left') {
      this.ctx.list.remove(groupKey(id));
      if (conv) this.ctx.leftOpen();
      return;
    }
    if (!conv) return;
    conv.setGone(text);
    // seen as it happened: no receipt can say so any more, the badge stays at 0
    const item = this.ctx.list.get(groupKey(id));
    if (item && this.ctx.reading()) this.ctx.list.noteRead(item.key, item.last_seq);
    this.render();
  }

  // ---- events ------------------------------------------------------------------------

  /** A message of a group pushed on the socket (a member's, or a system message). */
  onMessage(m) {
    const id = m.group_id;
    const info = this.info(id);
    this.stopTyping(id, m.from);
    const system = m.kind === 'system' && m.event;
    const wasGone = info.gone;
    if (system) this.applyEvent(info, m.event);
    const known = info.name ? { group: { id, name: info.name, member_count: info.member_count } } : null;
    if (info.gone !== 'left') this.ctx.list.noteMessage(groupKey(id), m, known);
    this.openConv(id)?.onMessage(m);
    if (system) this.afterEvent(info, m.event, wasGone);
    // the others' positions (and, after a change, the members) as they are now
    if (this.openConv(id) && !info.gone) this.refresh(id);
  }

  /** What a system message changes in what is known, before it is shown. */
  applyEvent(info, ev) {
    const users = Array.isArray(ev.users) ? ev.users : [];
    if ((ev.action === 'created' || ev.action === 'renamed') && ev.name) info.name = ev.name;
    if (ev.action === 'created') info.member_count = Math.max(info.member_count, users.length + 1);
    if (ev.action === 'added' && info.name) info.member_count += users.length;
    if (ev.action === 'removed' || ev.action === 'left') info.member_count = Math.max(1, info.member_count - users.length);
    if (ev.action === 'added') info.asked = false; // new senders: their names are asked for once
    if (ev.action === 'added' && users.includes(this.ctx.me().id)) {
      // added (again): a fresh start from the new join
      Object.assign(info, { gone: null, goneText: '', members: null });
    }
    if (info.name) this.ctx.list.updateGroup(info.id, { name: info.name, member_count: info.member_count });
    if (this.openConv(info.id)) this.render();
  }

  /** What a system message about me means, once it is shown. */
  afterEvent(info, ev, wasGone) {
    const me = this.ctx.me().id;
    const aboutMe = Array.isArray(ev.users) && ev.users.includes(me);
    const actor = this.nameOf(ev.actor, true) ?? 'Someone';
    if (ev.action === 'removed' && aboutMe) {
      this.setGone(info.id, 'removed', `${actor} removed you from this group. You can no longer send messages here.`);
    } else if (ev.action === 'left' && aboutMe) {
      this.setGone(info.id, 'left', 'You left this group.');
    } else if (ev.action === 'dissolved') {
      this.setGone(info.id, 'dissolved', `${actor} dissolved this group.`);
    } else if (ev.action === 'added' && aboutMe && wasGone && this.openConv(info.id)) {
      this.ctx.reopen(info.id); // added again while looking at what was left of it
    }
  }

  /** My read position in a group moved (a receipt from this tab or another). */
  onRead(frame) {
    const id = frame.group_id;
    const seq = Number(frame.read_seq) || 0;
    if (frame.user_id !== this.ctx.me().id) return; // others' positions are not pushed; ignore if they were
    this.ctx.list.noteRead(groupKey(id), seq);
    this.openConv(id)?.setMyRead(seq);
  }

  onTyping(frame) {
    const id = frame.group_id;
    const userId = frame.user_id;
    if (userId === this.ctx.me().id || typeof userId !== 'number') return;
    let timers = this.typing.get(id);
    if (!timers) this.typing.set(id, (timers = new Map()));
    clearTimeout(timers.get(userId));
    timers.set(userId, setTimeout(() => this.stopTyping(id, userId), TYPING_SHOWN_MS));
    this.typingChanged(id);
  }

  stopTyping(id, userId) {
    const timers = this.typing.get(id);
    if (!timers?.has(userId)) return;
    clearTimeout(timers.get(userId));
    timers.delete(userId);
    if (!timers.size) this.typing.delete(id);
    this.typingChanged(id);
  }

  typingChanged(id) {
    this.ctx.list.render();
    if (this.openConv(id)) this.render();
  }

  /** "Alice is typing…", "Alice and Bob are typing…", or null. */
  typingLine(id) {
    const timers = this.typing.get(id);
    if (!timers?.size) return null;
    const who = [...timers.keys()].map((u) => this.names.get(u)?.nick_name ?? 'Someone');
    if (who.length === 1) return `${who[0]} is typing…`;
    if (who.length === 2) return `${who[0]} and ${who[1]} are typing…`;
    return `${who.length} people are typing…`;
  }

  // ---- words -------------------------------------------------------------------------

  /** A user's name as a sentence uses it ("You" / "you" for me); null when not known. */
  nameOf(userId, start = false) {
    return this.text.nameOf(userId, start);
  }

  senderName(id, userId) {
    const name = this.names.get(userId)?.nick_name;
    if (name) return name;
    // a sender who left before this tab saw the members
    return this.info(id).members ? 'Former member' : '';
  }

  systemText(m) {
    return this.text.systemText(m);
  }

  /** A group item's last message in the list, with its sender. */
  lastLine(item) {
    const m = item.last_message;
    const info = this.info(item.group.id);
    const ids = m.kind === 'system' ? [m.event?.actor, ...(m.event?.users ?? [])] : [m.from];
    if (!info.asked && !info.gone && ids.some((u) => this.nameOf(u) == null)) {
      info.asked = true; // the names of a group not opened yet, once
      this.refresh(info.id);
    }
    if (m.kind === 'system') return this.systemText(m);
    if (m.from === this.ctx.me().id) return `You: ${m.content}`;
    const who = this.names.get(m.from)?.nick_name;
    return who ? `${who}: ${m.content}` : m.content;
  }

  /** k: the other members who have read up to `seq`; n: the other members. */
  readBy(id, seq) {
    const info = this.info(id);
    const me = this.ctx.me().id;
    if (!info.members) return { k: 0, n: Math.max(0, info.member_count - 1) };
    const others = info.members.filter((m) => m.id !== me);
    return { k: others.filter((m) => m.read_seq >= seq).length, n: others.length };
  }

  // ---- the header and the panel ---------------------------------------------------------

  /** A direct conversation was opened: no group header, no panel. */
  clearHead() {
    const { ui } = this;
    ui.avatar.classList.remove('group');
    ui.membersButton.hidden = true;
    ui.chat.dataset.panel = 'closed';
    this.panel.open = false;
    this.panel.render(null);
    delete ui.chat.dataset.kind;
    ui.input.disabled = ui.send.disabled = false;
    ui.input.placeholder = 'Write a message…';
  }

  /** The open group's header, composer and panel. */
  render() {
    const conv = this.ctx.conv();
    if (!conv?.group) return;
    const { ui } = this;
    const info = this.info(conv.group.id);
    ui.chat.dataset.kind = 'group';
    ui.avatar.classList.add('group');
    ui.avatar.textContent = initial(info.name);
    ui.name.textContent = info.name || 'Group';
    ui.sub.textContent = info.gone ? 'Not a member' : membersText(info.member_count);
    ui.presence.hidden = true;
    const typing = this.typingLine(info.id);
    ui.typing.textContent = typing ?? '';
    ui.typing.hidden = !typing;
    ui.chat.dataset.peerTyping = String(Boolean(typing));
    ui.membersButton.hidden = false;
    ui.membersButton.setAttribute('aria-expanded', String(this.panel.open));
    ui.chat.dataset.panel = this.panel.open ? 'open' : 'closed';
    ui.input.disabled = ui.send.disabled = Boolean(info.gone);
    ui.input.placeholder = info.gone ? 'You cannot write here' : 'Write a message…';
    this.panel.render(info);
  }
}
