// The web client: log in or register, the conversation list, the open conversation. One
// device socket per tab carries everything: the list is fetched at login and after each
// (re)connect, and from then on follows the socket's events (no polling).

import { api, session, onUnauthorized } from '/assets/api.js';
import { Conversation, byteLength, clearOutboxes, settleOutbox, MAX_CONTENT_BYTES } from '/assets/conversation.js';
import { ChatSocket, Code } from '/assets/socket.js';
import { el, formatShort, initial } from '/assets/dom.js';

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const app = document.getElementById('app');

const ui = {
  me: $('me'),
  meNick: $('me-nick'),
  meUser: $('me-user-name'),
  logout: $('logout-button'),
  banner: $('global-notice'),
  authNotice: $('auth-notice'),
  loginForm: $('login-form'),
  loginError: $('login-error'),
  registerForm: $('register-form'),
  registerError: $('register-error'),
  startForm: $('start-form'),
  startInput: $('start-user-name'),
  startError: $('start-error'),
  listError: $('list-error'),
  list: $('conversation-list'),
  listEmpty: $('conversation-list-empty'),
  listPane: $('list-view'),
  chat: $('chat'),
  placeholder: $('no-conversation'),
  back: $('back-button'),
  avatar: $('peer-avatar'),
  peerPresence: $('peer-presence'),
  peerTyping: $('peer-typing'),
  composer: $('composer'),
  input: $('message-input'),
  byteCount: $('byte-count'),
  conv: {
    peerName: $('peer-name'),
    peerUserName: $('peer-user-name'),
    connection: $('connection-status'),
    scroller: $('message-scroller'),
    list: $('message-list'),
    loadOlder: $('load-older'),
    historyEnd: $('history-end'),
    notice: $('notice'),
  },
};

// How long "typing…" shows after the last typing event (the typist's client sends one every
// ~2 s while typing, the server forwards at most one per 2 s).
const TYPING_SHOWN_MS = 3500;
// A typing frame at most this often.
const TYPING_EVERY_MS = 2000;

const state = {
  me: null, // {id, user_name, nick_name}
  socket: null, // the tab's device ChatSocket
  status: 'closed', // its status
  conv: null, // the open Conversation
  items: new Map(), // peer id -> {peer, last_message, last_seq, read_seq, peer_read_seq, unread, rank}
  rank: 0, // the next item rank: newest conversation on top
  online: new Map(), // peer id -> {online, at}
  typing: new Map(), // peer id -> timer: the peer is typing to me
  typingSentAt: 0,
  listNodes: new Map(), // peer id -> <li>
  listBusy: false,
  listAgain: false,
};

// ---- views ---------------------------------------------------------------------------

function setView(view) {
  app.dataset.view = view;
  $('loading').hidden = view !== 'loading';
  $('auth-view').hidden = view !== 'auth';
  $('home-view').hidden = view !== 'home';
  ui.me.hidden = view !== 'home';
}

function setPane(pane) {
  app.dataset.pane = pane;
  ui.chat.hidden = pane !== 'chat';
  ui.placeholder.hidden = pane === 'chat';
  renderList(); // the open conversation's badge shows 0 only while it is read
}

function showMessage(node, text) {
  node.textContent = text ?? '';
  node.hidden = !text;
}

function showAuth(mode = 'login', notice = null) {
  setView('auth');
  showMessage(ui.authNotice, notice);
  showMessage(ui.loginError, null);
  showMessage(ui.registerError, null);
  ui.loginForm.hidden = mode !== 'login';
  ui.registerForm.hidden = mode !== 'register';
  const form = mode === 'login' ? ui.loginForm : ui.registerForm;
  form.querySelector('input')?.focus();
}

function showHome() {
  const { me } = state;
  ui.meNick.textContent = me.nick_name;
  ui.meUser.textContent = '@' + me.user_name;
  setView('home');
  connectDevice();
  route();
}

// ---- session -------------------------------------------------------------------------

function endSession(notice) {
  closeConversation();
  stopDevice();
  clearOutboxes();
  state.me = null;
  state.items.clear();
  state.online.clear();
  for (const timer of state.typing.values()) clearTimeout(timer);
  state.typing.clear();
  state.listNodes.clear();
  ui.list.replaceChildren();
  ui.listEmpty.hidden = true;
  document.title = 'Chat';
  session.token = null;
  history.replaceState(null, '', location.pathname);
  showAuth('login', notice);
}

onUnauthorized(() => {
  if (state.me) endSession('Your session has ended. Please log in again.');
});

async function checkSession() {
  try {
    await api.me();
    return true;
  } catch (e) {
    return e.status !== 401;
  }
}

async function boot() {
  if (!session.token) {
    showAuth('login');
    return;
  }
  try {
    state.me = await api.me();
    showMessage(ui.banner, null);
    showHome();
  } catch (e) {
    if (e.status === 401) {
      session.token = null;
      showAuth('login', 'Your session has ended. Please log in again.');
    } else {
      showMessage(ui.banner, `${e.message} Retrying…`);
      setTimeout(boot, 3000);
    }
  }
}

async function logIn(userName, password) {
  const data = await api.login(userName, password);
  session.token = data.token;
  state.me = data.user;
  ui.loginForm.reset();
  ui.registerForm.reset();
  showHome();
}

async function withBusy(form, fn) {
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    await fn();
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
}

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ui.loginForm.elements;
  const userName = f.user_name.value.trim();
  const password = f.password.value;
  if (!userName || !password) {
    showMessage(ui.loginError, 'Enter your user name and password.');
    return;
  }
  withBusy(ui.loginForm, async () => {
    try {
      await logIn(userName, password);
    } catch (e) {
      showMessage(ui.loginError, e.status === 401 ? 'Wrong user name or password.' : e.message);
      f.password.select();
    }
  });
});

ui.registerForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ui.registerForm.elements;
  const nick = f.nick_name.value.trim();
  const userName = f.user_name.value.trim();
  const password = f.password.value;
  if (!nick || !userName || !password) {
    showMessage(ui.registerError, 'Fill in all three fields.');
    return;
  }
  withBusy(ui.registerForm, async () => {
    try {
      await api.register(nick, userName, password);
    } catch (e) {
      showMessage(ui.registerError, e.status === 409 ? `The user name “${userName}” is taken. Try another.` : e.message);
      return;
    }
    try {
      await logIn(userName, password);
    } catch (e) {
      showAuth('login', `Your account was created, but logging in failed: ${e.message}`);
    }
  });
});

$('show-register').addEventListener('click', () => showAuth('register'));
$('show-login').addEventListener('click', () => showAuth('login'));

ui.logout.addEventListener('click', async () => {
  ui.logout.disabled = true;
  // ours to close: the server's "session ended" would say something else
  closeConversation();
  stopDevice();
  try {
    await api.logout();
  } catch {
    // the token is forgotten below either way
  } finally {
    ui.logout.disabled = false;
  }
  endSession('You have logged out.');
});

// ---- routing: #chat/<user_name> is the open conversation ----------------------------

const CHAT_ROUTE = /^#chat\/(\w{1,32})$/;

function route() {
  if (!state.me) return;
  const m = CHAT_ROUTE.exec(location.hash);
  if (m) openByUserName(m[1]);
  else {
    closeConversation();
    setPane('list');
  }
}

window.addEventListener('popstate', route);

/** The user named `userName`, to write to; throws an Error whose message is what to show. */
async function lookupPeer(userName) {
  let peer;
  try {
    peer = await api.lookup(userName);
  } catch (e) {
    if (e.status === 404) throw Object.assign(new Error(`No user named “${userName}”.`), { status: 404 });
    throw e;
  }
  if (state.me && peer.id === state.me.id) throw new Error('That is you. Enter someone else’s user name.');
  return peer;
}

async function openByUserName(userName) {
  if (state.conv && state.conv.peer.user_name.toLowerCase() === userName.toLowerCase()) {
    setPane('chat');
    return;
  }
  try {
    const peer = await lookupPeer(userName);
    if (!state.me) return;
    startConversation(peer);
  } catch (e) {
    if (!state.me) return;
    history.replaceState(null, '', location.pathname);
    closeConversation();
    setPane('list');
    showMessage(ui.startError, e.message);
  }
}

function openConversation(peer) {
  if (!state.conv || state.conv.peer.id !== peer.id) {
    history.pushState({ chat: peer.user_name }, '', `#chat/${peer.user_name}`);
  }
  startConversation(peer);
}

function startConversation(peer) {
  if (state.conv && state.conv.peer.id === peer.id) {
    setPane('chat');
    ui.input.focus();
    return;
  }
  closeConversation();
  showMessage(ui.startError, null);
  ui.avatar.textContent = initial(peer.nick_name);
  state.conv = new Conversation({
    me: state.me,
    peer,
    els: ui.conv,
    socket: state.socket,
    peerReadSeq: state.items.get(peer.id)?.peer_read_seq ?? 0,
    hooks: { onShown: markReadIfSeen },
  });
  state.typingSentAt = 0;
  setPane('chat');
  state.conv.open(state.status);
  renderHead();
  markActive();
  ui.input.value = '';
  updateComposer();
  ui.input.focus();
}

function closeConversation() {
  if (!state.conv) return;
  state.conv.close();
  state.conv = null;
  markActive();
  renderList();
}

ui.back.addEventListener('click', () => {
  const peerId = state.conv?.peer.id;
  if (history.state && history.state.chat) history.back();
  else {
    history.pushState(null, '', location.pathname);
    route();
  }
  // keyboard users land back on the conversation they left
  requestAnimationFrame(() => state.listNodes.get(peerId)?.querySelector('button')?.focus());
});

// ---- starting a conversation ---------------------------------------------------------

ui.startForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const userName = ui.startInput.value.trim();
  showMessage(ui.startError, null);
  if (!userName) {
    showMessage(ui.startError, 'Enter the user name of the person to write to.');
    return;
  }
  if (userName.toLowerCase() === state.me.user_name.toLowerCase()) {
    showMessage(ui.startError, 'That is you. Enter someone else’s user name.');
    return;
  }
  withBusy(ui.startForm, async () => {
    try {
      const peer = await lookupPeer(userName);
      ui.startInput.value = '';
      openConversation(peer);
    } catch (e) {
      if (e.status === 401) return;
      showMessage(ui.startError, e.message);
    }
  });
});

// ---- the device socket: one per tab, for every conversation ----------------------------

function connectDevice() {
  if (state.socket) return;
  state.socket = new ChatSocket({
    token: session.token,
    handlers: {
      onStatus: (status) => {
        state.status = status;
        state.conv?.onStatus(status);
      },
      onConnected: () => {
        // what happened while away: the list again; the open conversation catches up itself
        refreshList();
        state.conv?.onConnected();
      },
      onEvent,
      onReply,
      onSessionEnded: () => endSession('Your session has ended. Please log in again.'),
      checkSession,
    },
  });
  state.socket.start();
}

function stopDevice() {
  const socket = state.socket;
  state.socket = null;
  state.status = 'closed';
  socket?.stop();
}

/** The other user of a conversation named "<id>:<id>". */
function peerOfConv(conv) {
  const ids = String(conv ?? '').split(':').map(Number);
  if (ids.length !== 2 || !ids.every(Number.isFinite)) return null;
  return ids[0] === state.me.id ? ids[1] : ids[0];
}

function onEvent(frame) {
  if (!state.me) return;
  switch (frame.code) {
    case Code.INCOMING: {
      const m = frame.message;
      if (!m || typeof m.seq !== 'number') return;
      const peerId = m.from === state.me.id ? m.to : m.from;
      if (m.from === peerId) stopTyping(peerId); // the message they were typing is here
      noteMessage(peerId, m, null);
      if (state.conv?.peer.id === peerId) state.conv.onMessage(m);
      return;
    }
    case Code.READ: {
      const peerId = peerOfConv(frame.conv);
      const seq = Number(frame.read_seq) || 0;
      if (peerId == null) return;
      const item = state.items.get(peerId);
      if (frame.user_id === state.me.id) {
        // my read position moved (this tab, another tab, an unread page): the badge follows
        if (item) {
          item.read_seq = Math.max(item.read_seq, seq);
          item.unread = Math.max(0, item.last_seq - item.read_seq);
        }
        if (state.conv?.peer.id === peerId) state.conv.setMyRead(seq);
      } else {
        // the peer has read my messages up to seq
        if (item) item.peer_read_seq = Math.max(item.peer_read_seq, seq);
        if (state.conv?.peer.id === peerId) state.conv.setPeerRead(seq);
      }
      renderList();
      return;
    }
    case Code.TYPING: {
      const peerId = frame.user_id;
      if (peerId === state.me.id || peerOfConv(frame.conv) !== peerId) return;
      startTyping(peerId);
      return;
    }
    case Code.PRESENCE:
      if (typeof frame.user_id !== 'number') return;
      state.online.set(frame.user_id, { online: frame.online === true, at: Date.now() });
      renderList();
      renderHead();
      return;
    default:
  }
}

function onReply(request, frame) {
  if (!state.me || !request) return;
  if (request.kind === 'send') {
    // stored: the list shows it at once, whether or not its conversation is still open
    if ((frame.code === Code.DELIVERED || frame.code === Code.STORED) && frame.message) {
      noteMessage(request.peer, frame.message, request.conv?.peer ?? null);
    }
    if (request.conv?.closed) settleOutbox(request.peer, request.cmid, frame);
  }
  if (request.conv && !request.conv.closed) request.conv.onReply(request, frame);
}

// ---- reading: receipts while the open conversation is seen -----------------------------

/** The open conversation is on screen and the tab has focus: what it shows is seen. */
const reading = () =>
  state.conv != null && app.dataset.pane === 'chat' && !document.hidden && document.hasFocus();

function markReadIfSeen() {
  if (reading()) state.conv.markRead();
  renderList();
}

window.addEventListener('focus', markReadIfSeen);
window.addEventListener('blur', () => renderList());
document.addEventListener('visibilitychange', markReadIfSeen);

// ---- typing and presence ------------------------------------------------------------------

function startTyping(peerId) {
  clearTimeout(state.typing.get(peerId));
  state.typing.set(peerId, setTimeout(() => stopTyping(peerId), TYPING_SHOWN_MS));
  renderList();
  renderHead();
}

function stopTyping(peerId) {
  if (!state.typing.has(peerId)) return;
  clearTimeout(state.typing.get(peerId));
  state.typing.delete(peerId);
  renderList();
  renderHead();
}

/** true, false, or null when not known (no conversation with them yet). */
const onlineOf = (peerId) => state.online.get(peerId)?.online ?? null;

function presenceDot(node, online, nick) {
  node.dataset.online = online === null ? 'unknown' : String(online);
  node.hidden = online === null;
  node.title = online ? `${nick} is online` : `${nick} is offline`;
  node.textContent = online ? 'online' : 'offline'; // read out; drawn as a dot
}

/** The open conversation's header: the peer's online dot and "… is typing". */
function renderHead() {
  const conv = state.conv;
  if (!conv) return;
  const { peer } = conv;
  presenceDot(ui.peerPresence, onlineOf(peer.id), peer.nick_name);
  const typing = state.typing.has(peer.id);
  ui.peerTyping.textContent = typing ? `${peer.nick_name} is typing…` : '';
  ui.peerTyping.hidden = !typing;
  ui.chat.dataset.peerTyping = String(typing);
}

// ---- the conversation list -----------------------------------------------------------

/** The list from the server (at login and after each reconnect), merged with what the events told. */
async function refreshList() {
  if (!state.me) return;
  if (state.listBusy) {
    state.listAgain = true; // what changed meanwhile may have missed the request in flight
    return;
  }
  state.listBusy = true;
  state.listAgain = false;
  const asked = Date.now();
  try {
    const items = await api.conversations();
    if (!state.me) return;
    showMessage(ui.listError, null);
    mergeList(Array.isArray(items) ? items : [], asked);
  } catch (e) {
    if (e.status !== 401) showMessage(ui.listError, `Could not load conversations: ${e.message}`);
  } finally {
    state.listBusy = false;
    if (state.listAgain) refreshList();
  }
}

function mergeList(items, asked) {
  // newest first from the server; what the events moved since stays where they put it
  const fresh = new Set();
  let rank = state.rank + items.length;
  for (const it of items) {
    if (!it || !it.peer) continue;
    const id = it.peer.id;
    fresh.add(id);
    const old = state.items.get(id);
    const item = {
      peer: it.peer,
      last_message: it.last_message ?? null,
      last_seq: Number(it.last_seq) || 0,
      read_seq: Number(it.read_seq) || 0,
      peer_read_seq: Number(it.peer_read_seq) || 0,
      rank: rank--,
    };
    if (old) {
      // positions only grow: an event newer than this answer keeps its word
      if (old.last_seq > item.last_seq) {
        item.last_seq = old.last_seq;
        item.last_message = old.last_message;
        item.rank = Math.max(item.rank, old.rank);
      }
      item.read_seq = Math.max(item.read_seq, old.read_seq);
      item.peer_read_seq = Math.max(item.peer_read_seq, old.peer_read_seq);
    }
    item.unread = Math.max(0, item.last_seq - item.read_seq);
    state.items.set(id, item);
    const seen = state.online.get(id);
    if (typeof it.online === 'boolean' && !(seen && seen.at > asked)) state.online.set(id, { online: it.online, at: asked });
    if (state.conv?.peer.id === id) state.conv.setPeerRead(item.peer_read_seq);
  }
  state.rank += items.length + 1;
  // a conversation this tab learnt of after the request was answered stays too
  for (const [id, item] of state.items) if (!fresh.has(id) && !item.local) state.items.delete(id);
  renderList();
  renderHead();
}

/**
 * A stored message of the conversation with `peerId` (pushed, or the reply to my send): the
 * list item moves to the top with it. `peer` ({id, user_name, nick_name}) when known.
 */
function noteMessage(peerId, m, peer) {
  let item = state.items.get(peerId);
  if (!item) {
    const known = peer ?? (state.conv?.peer.id === peerId ? state.conv.peer : null);
    // A new conversation. The message does not name the peer, and the server's list has the
    // rest (presence, positions): ask for it once; meanwhile show what is known.
    refreshList();
    if (!known) return;
    item = { peer: known, last_message: null, last_seq: 0, read_seq: 0, peer_read_seq: 0, unread: 0, rank: 0, local: true };
    state.items.set(peerId, item);
  }
  if (m.seq >= item.last_seq) {
    item.last_seq = m.seq;
    item.last_message = m;
  }
  // sending moves my read position to what I sent
  if (m.from === state.me.id) item.read_seq = Math.max(item.read_seq, m.seq);
  item.unread = Math.max(0, item.last_seq - item.read_seq);
  item.rank = ++state.rank;
  renderList();
}

function createListItem(peerId) {
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
    const peer = button._peer;
    if (peer) openConversation(peer);
  });
  const li = el('li', { dataset: { peerId: String(peerId) } }, [button]);
  li._parts = parts;
  li._button = button;
  return li;
}

function fillListItem(li, item) {
  const { peer, last_message: last } = item;
  const p = li._parts;
  li._button._peer = peer;
  li._button.dataset.userName = peer.user_name;
  li._button.dataset.peerId = String(peer.id);
  p.avatar.textContent = initial(peer.nick_name);
  p.nick.textContent = peer.nick_name;
  p.user.textContent = '@' + peer.user_name;
  presenceDot(p.presence, onlineOf(peer.id), peer.nick_name);
  const typing = state.typing.has(peer.id);
  li._button.dataset.typing = String(typing);
  if (typing) {
    p.last.textContent = 'typing…';
  } else if (last) {
    p.last.textContent = (last.from === state.me.id ? 'You: ' : '') + last.content.replace(/\s+/g, ' ');
  } else {
    p.last.textContent = '';
  }
  if (last) {
    p.time.dateTime = last.created_at;
    p.time.textContent = formatShort(last.created_at);
  } else {
    p.time.textContent = '';
  }
  // the open conversation, while it is seen, is being read: what arrives is marked read
  const n = peer.id === state.conv?.peer.id && reading() ? 0 : Number(item.unread) || 0;
  p.badge.dataset.count = String(n);
  p.badge.hidden = n === 0;
  p.count.textContent = n > 99 ? '99+' : String(n);
  li._button.classList.toggle('has-unread', n > 0);
}

function renderList() {
  if (!state.me) return;
  const items = [...state.items.values()].sort((a, b) => b.rank - a.rank);
  const focused = document.activeElement;
  const keep = new Set();
  let prev = null;
  let unreadTotal = 0;
  for (const item of items) {
    const id = item.peer.id;
    keep.add(id);
    let li = state.listNodes.get(id);
    if (!li) {
      li = createListItem(id);
      state.listNodes.set(id, li);
    }
    fillListItem(li, item);
    unreadTotal += Number(li._parts.badge.dataset.count) || 0;
    const want = prev ? prev.nextSibling : ui.list.firstChild;
    if (li !== want) ui.list.insertBefore(li, want);
    prev = li;
  }
  for (const [id, li] of state.listNodes) {
    if (!keep.has(id)) {
      li.remove();
      state.listNodes.delete(id);
    }
  }
  ui.listEmpty.hidden = keep.size > 0;
  if (focused && focused !== document.activeElement && ui.list.contains(focused)) focused.focus({ preventScroll: true });
  document.title = unreadTotal > 0 ? `(${unreadTotal}) Chat` : 'Chat';
  markActive();
}

function markActive() {
  const activeId = state.conv?.peer.id;
  for (const [id, li] of state.listNodes) {
    if (id === activeId) li._button.setAttribute('aria-current', 'true');
    else li._button.removeAttribute('aria-current');
  }
}

// ---- the composer --------------------------------------------------------------------

function updateComposer() {
  const input = ui.input;
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  const bytes = byteLength(input.value.trim());
  const near = bytes > MAX_CONTENT_BYTES * 0.8;
  ui.byteCount.textContent = near ? `${bytes} / ${MAX_CONTENT_BYTES} bytes` : '';
  ui.byteCount.classList.toggle('over', bytes > MAX_CONTENT_BYTES);
}

function send() {
  if (!state.conv) return;
  if (state.conv.submit(ui.input.value)) {
    ui.input.value = '';
    updateComposer();
    state.typingSentAt = 0; // the message clears the peer's "typing": the next keystroke says it again
  }
  ui.input.focus();
}

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  send();
});

ui.input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    send();
  }
});

ui.input.addEventListener('input', () => {
  updateComposer();
  sendTyping();
});

/** Tells the peer I am typing: at most one frame per TYPING_EVERY_MS (it gets no reply). */
function sendTyping() {
  const conv = state.conv;
  if (!conv || !state.socket || !ui.input.value.trim()) return;
  const now = Date.now();
  if (now - state.typingSentAt < TYPING_EVERY_MS) return;
  if (state.socket.fire({ type: 6, to: conv.peer.id })) state.typingSentAt = now;
}

ui.conv.loadOlder.addEventListener('click', () => state.conv?.loadOlder());

// Escape in a conversation goes back to the list on a narrow screen.
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && app.dataset.pane === 'chat' && ui.back.offsetParent !== null) ui.back.click();
});

boot();
