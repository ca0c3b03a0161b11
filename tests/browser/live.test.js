// The web client's one device socket per tab, in a real browser: the list follows live (new
// conversations, badges, with no polling), typing, "Read", catch-up after a drop, two tabs of
// one user, and the peer's online dot. Run: node --test tests/browser/
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, launchBrowser, openPage, until, attrIs, screenshot, clearScreenshots, steps } = require('./harness.js');
const {
  byId,
  message,
  conversationItem,
  logIn,
  connected,
  send,
  shownSeqs,
  backToList,
  typeUntilShown,
  watch,
} = require('./pages.js');

const DAVE = { nick: 'Dave', user: 'dave_001', password: 'dave-password' };
const ERIN = { nick: 'Erin', user: 'erin_001', password: 'erin-password' };

const DESKTOP = { viewport: { width: 1100, height: 700 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

// Before the app loads: keep the page's WebSockets where a test can close them, and a switch
// that sends new ones to a closed port (the socket stays down until it is switched back).
function socketSpy() {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__wsBlocked = false;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(window.__wsBlocked ? 'ws://127.0.0.1:9/blocked' : url, protocols);
      window.__sockets.push(this);
    }
  };
}

// ---- page helpers ----------------------------------------------------------------------

const badge = (page, userName) => conversationItem(page, userName).getByTestId('unread-badge');

async function openWith(page, userName) {
  await conversationItem(page, userName).click();
  await connected(page, userName);
}

// ---- the scenario ----------------------------------------------------------------------

describe('live updates over one device socket', () => {
  const server = new Server('browser-live-server.log');
  let browser;
  let D1; // Dave, desktop
  let D2; // Dave's second tab (its own session), desktop
  let E; // Erin, phone width: the list and the conversation are separate panes
  let seenE;
  let seenD1;

  before(async () => {
    clearScreenshots('live-');
    await server.start();
    for (const u of [DAVE, ERIN]) {
      const reg = await server.http('POST', '/user/register', { nick_name: u.nick, user_name: u.user, password: u.password });
      assert.equal(reg.status, 200, JSON.stringify(reg.body));
    }
    browser = await launchBrowser();
    D1 = await openPage(browser, server.base, DESKTOP);
    E = await openPage(browser, server.base, PHONE);
    await E.context.addInitScript(socketSpy);
    seenE = watch(E.page);
    seenD1 = watch(D1.page);
    await D1.page.goto('/');
    await logIn(D1.page, DAVE);
    await E.page.goto('/');
    await logIn(E.page, ERIN);
  });

  const step = steps({
    prefix: 'live-',
    pages: () => [
      ['dave', D1],
      ['dave-tab2', D2],
      ['erin', E],
    ],
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop();
    await server.cleanUp();
  });

  step('a new conversation appears live in the other user’s list', async () => {
    await byId(E.page, 'conversation-list-empty').waitFor();
    await byId(D1.page, 'start-user-name').fill(ERIN.user);
    await byId(D1.page, 'start-user-name').press('Enter');
    await connected(D1.page, ERIN.user);
    await send(D1.page, 'Hello Erin');

    const item = conversationItem(E.page, DAVE.user);
    await item.waitFor();
    await attrIs(badge(E.page, DAVE.user), 'data-count', '1');
    assert.equal(await item.getByTestId('conversation-last').textContent(), 'Hello Erin');
    assert.equal(await byId(E.page, 'conversation-list-empty').isVisible(), false);
    await screenshot(E.page, 'live-01-new-conversation');

    // one device socket, no per-conversation ones
    for (const seen of [seenE, seenD1]) {
      assert.equal(seen.sockets.length, 1, `one socket: ${seen.sockets}`);
      assert.ok(!seen.sockets[0].includes('toUid'), seen.sockets[0]);
    }
  });

  step('the badge count rises live and clears on opening', async () => {
    const listsBefore = seenE.lists;
    await send(D1.page, 'Second one');
    await send(D1.page, 'And a third');
    await attrIs(badge(E.page, DAVE.user), 'data-count', '3');
    assert.match(await conversationItem(E.page, DAVE.user).getByTestId('conversation-last').textContent(), /And a third/);
    assert.equal(seenE.lists, listsBefore, 'the list followed the socket: no /conversations request');
    await screenshot(E.page, 'live-02-badge-3');

    await openWith(E.page, DAVE.user);
    await message(E.page, 'And a third');
    await send(E.page, 'Hi Dave!'); // an answer: Dave may write more than three
    await message(D1.page, 'Hi Dave!');
    await backToList(E.page);
    await attrIs(badge(E.page, DAVE.user), 'data-count', '0');
    assert.equal(await badge(E.page, DAVE.user).isVisible(), false);
    assert.equal(seenE.lists, listsBefore, 'still no /conversations request');
  });

  step('the typing indicator shows and clears', async () => {
    await openWith(E.page, DAVE.user);
    const typing = byId(E.page, 'peer-typing');
    assert.equal(await typing.isVisible(), false);

    // shown while Dave types (the server forwards one typing frame per 2 s, so a keystroke
    // right after the last forwarded one may not show yet: keep typing until it does)
    const input = byId(D1.page, 'message-input');
    const typedFrom = seenD1.sent.length;
    const typedAt = Date.now();
    await typeUntilShown(input, typing, 'Typing this');
    const typingFrames = seenD1.sent.slice(typedFrom).filter((f) => f.type === 6).length;
    const allowed = Math.floor((Date.now() - typedAt) / 2000) + 1;
    assert.ok(typingFrames >= 1 && typingFrames <= allowed, `typing frames throttled: ${typingFrames} (at most ${allowed})`);
    assert.equal(await typing.textContent(), 'Dave is typing…');
    await screenshot(E.page, 'live-03-typing');
    await input.fill('Typing this');
    await input.press('Enter');
    await message(E.page, 'Typing this');
    await typing.waitFor({ state: 'hidden', timeout: 1500 }); // sooner than the ~3.5 s timeout

    // and by itself a few seconds after the last keystroke
    await typeUntilShown(input, typing, 'Hmm');
    const shown = Date.now();
    await typing.waitFor({ state: 'hidden', timeout: 6000 });
    assert.ok(Date.now() - shown > 2000, 'it stayed a few seconds');
    await input.fill('');
  });

  step('“Read” appears on the sender’s message after the peer opens the conversation', async () => {
    await backToList(E.page);
    await send(D1.page, 'Are you reading?');
    const m = await message(D1.page, 'Are you reading?');
    const state = m.getByTestId('message-state');
    await attrIs(state, 'data-state', 'delivered'); // Erin is online, not looking
    await attrIs(badge(E.page, DAVE.user), 'data-count', '1');
    // the earlier ones, which Erin has seen, are already read
    await attrIs((await message(D1.page, 'Typing this')).getByTestId('message-state'), 'data-state', 'read');
    assert.equal(await state.getAttribute('data-state'), 'delivered', 'not read while Erin is in the list');

    await openWith(E.page, DAVE.user);
    await attrIs(state, 'data-state', 'read');
    assert.equal(await state.textContent(), 'Read');
    await screenshot(D1.page, 'live-04-read');
  });

  step('messages sent while a socket was down appear after its reconnect, once and in order', async () => {
    const before = await shownSeqs(E.page);
    await message(E.page, 'Are you reading?');
    const sentBefore = seenE.sent.length;
    // the socket drops and stays down until switched back
    await E.page.evaluate(() => {
      window.__wsBlocked = true;
      for (const ws of window.__sockets) ws.close();
    });
    await attrIs(byId(E.page, 'connection-status'), 'data-status', 'reconnecting');
    for (const n of [1, 2, 3]) {
      await send(D1.page, `While you were away ${n}`);
      await attrIs((await message(D1.page, `While you were away ${n}`)).getByTestId('message-state'), 'data-state', 'stored');
    }
    await screenshot(E.page, 'live-05-socket-down');
    await E.page.evaluate(() => {
      window.__wsBlocked = false;
    });
    await attrIs(byId(E.page, 'connection-status'), 'data-status', 'open', 20_000);
    for (const n of [1, 2, 3]) await message(E.page, `While you were away ${n}`);
    const after = await shownSeqs(E.page);
    const top = before[before.length - 1];
    assert.deepEqual(after, [...before, top + 1, top + 2, top + 3], 'no duplicates, no gaps, in seq order');
    const catchUp = seenE.sent.slice(sentBefore).find((f) => f.type === 4);
    assert.ok(catchUp, 'the open conversation caught up with a type 4 frame');
    assert.equal(catchUp.after_seq, top);
    // the live conversation goes on
    await send(D1.page, 'Back to normal');
    await message(E.page, 'Back to normal');
    assert.deepEqual(await shownSeqs(E.page), [...after, top + 4]);
    await screenshot(E.page, 'live-06-caught-up');
  });

  step('two tabs of one user: reading in one clears the badge in the other', async () => {
    D2 = await openPage(browser, server.base, DESKTOP);
    await D2.page.goto('/');
    await logIn(D2.page, DAVE);
    await backToList(D1.page);
    await send(E.page, 'For both of your tabs 1');
    await send(E.page, 'For both of your tabs 2');
    await attrIs(badge(D1.page, ERIN.user), 'data-count', '2');
    await attrIs(badge(D2.page, ERIN.user), 'data-count', '2');
    await screenshot(D2.page, 'live-07-second-tab-badge');

    await openWith(D1.page, ERIN.user);
    await message(D1.page, 'For both of your tabs 2');
    await attrIs(badge(D2.page, ERIN.user), 'data-count', '0');
    assert.equal(await badge(D2.page, ERIN.user).isVisible(), false);
    await screenshot(D2.page, 'live-08-second-tab-cleared');
  });

  step('the online dot follows the peer logging in and out', async () => {
    const listDot = conversationItem(D1.page, ERIN.user).getByTestId('presence-dot');
    const headDot = byId(D1.page, 'peer-presence');
    await attrIs(listDot, 'data-online', 'true');
    await attrIs(headDot, 'data-online', 'true');
    await backToList(E.page); // a phone shows "Log out" with the list
    await byId(E.page, 'logout-button').click();
    await byId(E.page, 'login-form').waitFor();
    await attrIs(listDot, 'data-online', 'false');
    await attrIs(headDot, 'data-online', 'false');
    await attrIs(conversationItem(D2.page, ERIN.user).getByTestId('presence-dot'), 'data-online', 'false');
    await screenshot(D1.page, 'live-09-peer-offline');
    await logIn(E.page, ERIN);
    await attrIs(listDot, 'data-online', 'true');
    await attrIs(headDot, 'data-online', 'true');
    await screenshot(D1.page, 'live-10-peer-online');
  });

  test('no script errors on any page', async () => {
    for (const [who, p] of [
      ['Dave', D1],
      ['Dave (tab 2)', D2],
      ['Erin', E],
    ]) {
      if (!p) continue;
      assert.deepEqual(p.problems.pageErrors, [], `${who}: page errors`);
      assert.deepEqual(p.problems.consoleErrors, [], `${who}: console errors`);
      assert.deepEqual(p.problems.dialogs, [], `${who}: dialogs`);
    }
  });
});
