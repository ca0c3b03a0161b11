// The web client: log in or register, the conversation list, the open conversation.

import { api, session, onUnauthorized } from '/assets/api.js';
import { Conversation, byteLength, clearOutboxes, MAX_CONTENT_BYTES } from '/assets/conversation.js';
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

const LIST_REFRESH_MS = 4000;

const state = {
  me: null, // {id, user_name, nick_name}
  conv: null, // the open Conversation
  listSig: '',
  listNodes: new Map(), // peer id -> <li>
  listBusy: false,
  listAgain: false,
  activityTimer: null,
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
  if (pane === 'list') refreshList();
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
  route();
}

const listVisible = () => app.dataset.view === 'home' && ui.listPane.offsetParent !== null;

// ---- session -------------------------------------------------------------------------

function endSession(notice) {
  closeConversation();
  clearOutboxes();
  state.me = null;
  state.listSig = '';
  state.listNodes.clear();
  ui.list.replaceChildren();
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
  closeConversation(); // ours to close: the server's "session ended" would say something else
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
    hooks: {
      token: session.token,
      checkSession,
      onSessionEnded: () => endSession('Your session has ended. Please log in again.'),
      onActivity: listActivity,
    },
  });
  state.conv.open();
  markActive();
  setPane('chat');
  ui.input.value = '';
  updateComposer();
  ui.input.focus();
}

function closeConversation() {
  if (!state.conv) return;
  state.conv.close();
  state.conv = null;
  markActive();
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

// ---- the conversation list -----------------------------------------------------------

async function refreshList() {
  if (!state.me || !listVisible() || document.hidden) return;
  if (state.listBusy) {
    state.listAgain = true; // what changed meanwhile may have missed the request in flight
    return;
  }
  state.listBusy = true;
  state.listAgain = false;
  try {
    const items = await api.conversations();
    if (!state.me) return;
    showMessage(ui.listError, null);
    const sig = JSON.stringify(items);
    if (sig !== state.listSig) {
      state.listSig = sig;
      renderList(Array.isArray(items) ? items : []);
    }
  } catch (e) {
    if (e.status !== 401) showMessage(ui.listError, `Could not load conversations: ${e.message}`);
  } finally {
    state.listBusy = false;
    if (state.listAgain) refreshList();
  }
}

function listActivity() {
  clearTimeout(state.activityTimer);
  state.activityTimer = setTimeout(refreshList, 250);
}

setInterval(refreshList, LIST_REFRESH_MS);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refreshList();
});

function createListItem(peerId) {
  const parts = {
    avatar: el('span', { className: 'avatar', attrs: { 'aria-hidden': 'true' } }),
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
    parts.avatar,
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
  const { peer, last_message: last, unread } = item;
  const p = li._parts;
  li._button._peer = peer;
  li._button.dataset.userName = peer.user_name;
  li._button.dataset.peerId = String(peer.id);
  p.avatar.textContent = initial(peer.nick_name);
  p.nick.textContent = peer.nick_name;
  p.user.textContent = '@' + peer.user_name;
  if (last) {
    p.last.textContent = (last.from === state.me.id ? 'You: ' : '') + last.content.replace(/\s+/g, ' ');
    p.time.dateTime = last.created_at;
    p.time.textContent = formatShort(last.created_at);
  } else {
    p.last.textContent = '';
    p.time.textContent = '';
  }
  // the open conversation is being read: what arrives in it is marked read as it is shown
  const n = peer.id === state.conv?.peer.id ? 0 : Number(unread) || 0;
  p.badge.dataset.count = String(n);
  p.badge.hidden = n === 0;
  p.count.textContent = n > 99 ? '99+' : String(n);
  li._button.classList.toggle('has-unread', n > 0);
}

function renderList(items) {
  const focused = document.activeElement;
  const keep = new Set();
  let prev = null;
  let unreadTotal = 0;
  for (const item of items) {
    if (!item || !item.peer) continue;
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

ui.input.addEventListener('input', updateComposer);

ui.conv.loadOlder.addEventListener('click', () => state.conv?.loadOlder());

// Escape in a conversation goes back to the list on a narrow screen.
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && app.dataset.pane === 'chat' && ui.back.offsetParent !== null) ui.back.click();
});

boot();
