// The web client: log in or register, the conversation list (list.js), the open conversation,
// direct or a group's (groups.js). One device socket per tab carries everything: the list is
// fetched at login and after each (re)connect, and from then on follows the socket's events
// (no polling).

import { api, session, onUnauthorized } from '/assets/api.js';
import {
  Conversation,
  byteLength,
  clearOutboxes,
  settleOutbox,
  groupKey,
  peerKey,
  MAX_CONTENT_BYTES,
} from '/assets/conversation.js';
import { ChatSocket, Code } from '/assets/socket.js';
import { initial } from '/assets/dom.js';
import { ConversationList, presenceDot, showMessage } from '/assets/list.js';
import { Groups } from '/assets/groups.js';
import { setUpGroupCreate } from '/assets/group-create.js';

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
  typing: new Map(), // peer id -> timer: the peer is typing to me
  typingSentAt: 0,
};

const list = new ConversationList({
  ui: { list: ui.list, listEmpty: ui.listEmpty, listError: ui.listError },
  ctx: {
    me: () => state.me,
    activeKey: () => state.conv?.key ?? null,
    reading: () => reading(),
    typingLine: (key) => {
      const [kind, id] = [key[0], Number(key.slice(2))];
      if (kind === 'g') return groups.typingLine(id);
      return state.typing.has(id) ? 'typing…' : null;
    },
    lastLine: (item) => groups.lastLine(item),
    open: (item) => (item.peer ? openConversation(item.peer) : openGroup(item.group.id)),
    merged: (item) => {
      if (item.group) groups.merged(item);
      else if (state.conv?.peer?.id === item.peer.id) state.conv.setPeerRead(item.peer_read_seq);
    },
    refreshed: () => renderHead(), // the peer's presence may have changed
  },
});

const groups = new Groups({
  me: () => state.me,
  list,
  conv: () => state.conv,
  reading: () => reading(),
  reopen: (id) => {
    closeConversation();
    startGroup(id);
  },
  leftOpen: () => {
    closeConversation();
    history.replaceState(null, '', location.pathname);
    setPane('list');
  },
});

const groupCreate = setUpGroupCreate({
  me: () => state.me,
  created: (view) => {
    groups.setView(view);
    list.addGroup(view);
    openGroup(view.id);
  },
});

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
  list.render(); // the open conversation's badge shows 0 only while it is read
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
  groups.loadNames();
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
  list.clear();
  groups.clear();
  groupCreate.reset();
  for (const timer of state.typing.values()) clearTimeout(timer);
  state.typing.clear();
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

// ---- routing: #chat/<user_name> or #group/<id> is the open conversation -------------

const CHAT_ROUTE = /^#chat\/(\w{1,32})$/;
const GROUP_ROUTE = /^#group\/(\d{1,18})$/;

function route() {
  if (!state.me) return;
  const m = CHAT_ROUTE.exec(location.hash);
  const g = GROUP_ROUTE.exec(location.hash);
  if (m) openByUserName(m[1]);
  else if (g) startGroup(Number(g[1]));
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
  if (state.conv?.peer && state.conv.peer.user_name.toLowerCase() === userName.toLowerCase()) {
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
  if (state.conv?.key !== peerKey(peer.id)) {
    history.pushState({ chat: peer.user_name }, '', `#chat/${peer.user_name}`);
  }
  startConversation(peer);
}

function openGroup(id) {
  if (state.conv?.key !== groupKey(id)) history.pushState({ chat: `g:${id}` }, '', `#group/${id}`);
  startGroup(id);
}

function startConversation(peer) {
  if (state.conv?.key === peerKey(peer.id)) {
    setPane('chat');
    ui.input.focus();
    return;
  }
  showConversation({ peer, peerReadSeq: list.get(peerKey(peer.id))?.peer_read_seq ?? 0, hooks: {} });
}

function startGroup(id) {
  if (state.conv?.key === groupKey(id)) {
    setPane('chat');
    ui.input.focus();
    return;
  }
  const info = groups.info(id);
  showConversation({ group: { id, name: info.name }, hooks: groups.hooksFor(id) });
  groups.opened(state.conv);
}

function showConversation({ hooks, ...target }) {
  closeConversation();
  showMessage(ui.startError, null);
  state.conv = new Conversation({
    me: state.me,
    ...target,
    els: ui.conv,
    socket: state.socket,
    hooks: { ...hooks, onShown: markReadIfSeen },
  });
  state.typingSentAt = 0;
  setPane('chat');
  state.conv.open(state.status);
  renderHead();
  list.markActive();
  ui.input.value = '';
  updateComposer();
  ui.input.focus();
}

function closeConversation() {
  if (!state.conv) return;
  state.conv.close();
  state.conv = null;
  list.render();
}

ui.back.addEventListener('click', () => {
  const key = state.conv?.key;
  if (history.state && history.state.chat) history.back();
  else {
    history.pushState(null, '', location.pathname);
    route();
  }
  // keyboard users land back on the conversation they left
  requestAnimationFrame(() => list.focusItem(key));
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
        list.refresh();
        state.conv?.onConnected();
        groups.onFocus(); // and its members' positions, if a group's
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

/** Whether the direct conversation with `peerId` is the open one. */
const isOpenPeer = (peerId) => state.conv?.key === peerKey(peerId);

function onEvent(frame) {
  if (!state.me) return;
  const inGroup = typeof frame.group_id === 'number' || typeof frame.message?.group_id === 'number';
  switch (frame.code) {
    case Code.INCOMING: {
      const m = frame.message;
      if (!m || typeof m.seq !== 'number') return;
      if (inGroup) return groups.onMessage(m);
      const peerId = m.from === state.me.id ? m.to : m.from;
      if (m.from === peerId) stopTyping(peerId); // the message they were typing is here
      list.noteMessage(peerKey(peerId), m, isOpenPeer(peerId) ? { peer: state.conv.peer } : null);
      if (isOpenPeer(peerId)) state.conv.onMessage(m);
      return;
    }
    case Code.READ: {
      if (inGroup) return groups.onRead(frame);
      const peerId = peerOfConv(frame.conv);
      const seq = Number(frame.read_seq) || 0;
      if (peerId == null) return;
      if (frame.user_id === state.me.id) {
        // my read position moved (this tab, another tab, an unread page): the badge follows
        if (isOpenPeer(peerId)) state.conv.setMyRead(seq);
        list.noteRead(peerKey(peerId), seq);
      } else {
        // the peer has read my messages up to seq
        list.notePeerRead(peerKey(peerId), seq);
        if (isOpenPeer(peerId)) state.conv.setPeerRead(seq);
        list.render();
      }
      return;
    }
    case Code.TYPING: {
      if (inGroup) return groups.onTyping(frame);
      const peerId = frame.user_id;
      if (peerId === state.me.id || peerOfConv(frame.conv) !== peerId) return;
      startTyping(peerId);
      return;
    }
    case Code.PRESENCE:
      if (typeof frame.user_id !== 'number') return;
      list.setOnline(frame.user_id, frame.online === true);
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
      const peer = request.conv?.peer;
      list.noteMessage(request.key, frame.message, peer ? { peer } : null);
    }
    if (request.conv?.closed) settleOutbox(request.key, request.cmid, frame);
  }
  if (request.conv && !request.conv.closed) request.conv.onReply(request, frame);
}

// ---- reading: receipts while the open conversation is seen -----------------------------

/** The open conversation is on screen and the tab has focus: what it shows is seen. */
const reading = () =>
  state.conv != null && app.dataset.pane === 'chat' && !document.hidden && document.hasFocus();

function markReadIfSeen() {
  if (reading()) state.conv.markRead();
  list.render();
}

window.addEventListener('focus', () => {
  markReadIfSeen();
  groups.onFocus(); // the others may have read my messages meanwhile: they are not pushed
});
window.addEventListener('blur', () => list.render());
document.addEventListener('visibilitychange', markReadIfSeen);

// ---- typing and presence ------------------------------------------------------------------

function startTyping(peerId) {
  clearTimeout(state.typing.get(peerId));
  state.typing.set(peerId, setTimeout(() => stopTyping(peerId), TYPING_SHOWN_MS));
  list.render();
  renderHead();
}

function stopTyping(peerId) {
  if (!state.typing.has(peerId)) return;
  clearTimeout(state.typing.get(peerId));
  state.typing.delete(peerId);
  list.render();
  renderHead();
}

/** The open conversation's header: the peer's online dot and "… is typing" (a group's: groups.js). */
function renderHead() {
  const conv = state.conv;
  if (!conv) return;
  if (conv.group) {
    groups.render();
    return;
  }
  groups.clearHead();
  const { peer } = conv;
  ui.avatar.textContent = initial(peer.nick_name);
  presenceDot(ui.peerPresence, list.onlineOf(peer.id), peer.nick_name);
  const typing = state.typing.has(peer.id);
  ui.peerTyping.textContent = typing ? `${peer.nick_name} is typing…` : '';
  ui.peerTyping.hidden = !typing;
  ui.chat.dataset.peerTyping = String(typing);
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
  if (!state.conv || state.conv.gone) return;
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
  if (state.socket.fire({ type: 6, ...conv.address })) state.typingSentAt = now;
}

ui.conv.loadOlder.addEventListener('click', () => state.conv?.loadOlder());

// Escape in a conversation goes back to the list on a narrow screen.
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && app.dataset.pane === 'chat' && ui.back.offsetParent !== null) ui.back.click();
});

boot();
