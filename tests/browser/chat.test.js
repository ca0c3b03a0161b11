// The web client in a real browser: two people (two isolated browser contexts) register, write
// while the other is away, read, chat live, hit the no-reply limit, survive a server restart,
// reload, page through history and log out. Run: node --test tests/browser/
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, launchBrowser, openPage, until, attrIs, screenshot, clearScreenshots, steps } = require('./harness.js');
const {
  byId,
  message,
  conversationItem,
  loggedInAs,
  logIn,
  connected,
  send,
  shownSeqs,
} = require('./pages.js');

const ALICE = { nick: 'Alice', user: 'alice_01', password: 'correct-horse' };
const BOB = { nick: 'Bob', user: 'bob_0001', password: 'battery-staple' };
const CAROL = { nick: 'Carol', user: 'carol_01', password: 'tr0ub4dor&3' };

const DESKTOP = { viewport: { width: 1100, height: 700 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

// ---- page helpers ----------------------------------------------------------------------

/** Waits until the message's state is `state` (or one of the states in an array). */
async function messageState(page, text, state) {
  const m = await message(page, text);
  if (!Array.isArray(state)) return attrIs(m.getByTestId('message-state'), 'data-state', state);
  let seen;
  await until(`"${text}" in state ${state.join('|')}`, async () => {
    seen = await m.getByTestId('message-state').getAttribute('data-state');
    return state.includes(seen);
  }).catch((e) => {
    throw new Error(`${e.message}; it was ${JSON.stringify(seen)}`);
  });
}

// A message sent while the peer has the conversation open is delivered, and soon read.
const DELIVERED = ['delivered', 'read'];

async function register(page, u) {
  await byId(page, 'show-register').click();
  await byId(page, 'register-nick-name').fill(u.nick);
  await byId(page, 'register-user-name').fill(u.user);
  await byId(page, 'register-password').fill(u.password);
  await byId(page, 'register-submit').click();
  await loggedInAs(page, u);
}

async function logOut(page) {
  await byId(page, 'logout-button').click();
  await byId(page, 'login-form').waitFor();
}

/** Opens (or starts) the conversation with `userName` through the start form. */
async function startWith(page, userName) {
  await byId(page, 'start-user-name').fill(userName);
  await byId(page, 'start-user-name').press('Enter');
  await connected(page, userName);
}

// ---- the scenario ----------------------------------------------------------------------

describe('web client in Chromium', () => {
  const server = new Server();
  let browser;
  let A; // Alice, desktop
  let B; // Bob, phone width

  before(async () => {
    clearScreenshots();
    await server.start();
    browser = await launchBrowser();
    A = await openPage(browser, server.base, DESKTOP);
    B = await openPage(browser, server.base, PHONE);
  });

  // The steps build on each other: after a failure the rest are skipped, and what both
  // pages showed is kept under test-artifacts/screenshots/failed-*.png.
  const step = steps({
    timeout: 90_000,
    pages: () => [
      ['alice', A],
      ['bob', B],
    ],
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop();
    await server.cleanUp();
  });

  step('both register through the form, and are logged in', async () => {
    await A.page.goto('/');
    await byId(A.page, 'login-form').waitFor();
    await screenshot(A.page, '01-login');
    await register(A.page, ALICE);

    await B.page.goto('/');
    // the server's reason is shown when it refuses a field
    await byId(B.page, 'show-register').click();
    await byId(B.page, 'register-nick-name').fill(BOB.nick);
    await byId(B.page, 'register-user-name').fill('bo');
    await byId(B.page, 'register-password').fill(BOB.password);
    await byId(B.page, 'register-submit').click();
    await byId(B.page, 'register-error').getByText(/user_name/).waitFor();
    // a taken user name is named
    await byId(B.page, 'register-user-name').fill(ALICE.user);
    await byId(B.page, 'register-submit').click();
    await byId(B.page, 'register-error').getByText(`The user name “${ALICE.user}” is taken`).waitFor();
    await byId(B.page, 'show-login').click();
    await register(B.page, BOB);
    await screenshot(B.page, '02-phone-empty-list');

    // the token lives in sessionStorage, never in the address
    const token = await A.page.evaluate(() => sessionStorage.getItem('chat.token'));
    assert.ok(token && token.length > 20, 'a token is kept');
    assert.ok(!A.page.url().includes(token), 'the token is not in the URL');
    const shown = await A.page.locator('body').innerText();
    assert.ok(!shown.includes(token), 'the token is not shown');
  });

  step('starting a conversation names an unknown user, and refuses yourself', async () => {
    await byId(A.page, 'start-user-name').fill('nobody_here');
    await byId(A.page, 'start-submit').click();
    await byId(A.page, 'start-error').getByText('No user named “nobody_here”').waitFor();
    await byId(A.page, 'start-user-name').fill(ALICE.user);
    await byId(A.page, 'start-submit').click();
    await byId(A.page, 'start-error').getByText('That is you').waitFor();
  });

  step('Alice writes to Bob while he is away: stored for later', async () => {
    await logOut(B.page);
    await startWith(A.page, BOB.user);
    await send(A.page, 'Hi Bob, are you there?');
    await messageState(A.page, 'Hi Bob, are you there?', 'stored');
    const label = await (await message(A.page, 'Hi Bob, are you there?')).getByTestId('message-state').textContent();
    assert.equal(label, 'Stored for later');
  });

  step('Bob logs in, sees one unread, reads it, and the count drops to 0', async () => {
    await logIn(B.page, BOB);
    const item = conversationItem(B.page, ALICE.user);
    await item.waitFor();
    await attrIs(item.getByTestId('unread-badge'), 'data-count', '1');
    assert.equal(await item.getByTestId('unread-badge').isVisible(), true);
    assert.match(await item.getByTestId('conversation-last').textContent(), /Hi Bob, are you there\?/);
    await screenshot(B.page, '03-phone-list-unread');

    await item.click();
    await connected(B.page, ALICE.user);
    const m = await message(B.page, 'Hi Bob, are you there?');
    assert.equal(await m.getAttribute('data-mine'), 'false');
    assert.equal(await m.getAttribute('data-seq'), '1');

    await byId(B.page, 'back-button').click();
    await byId(B.page, 'list-view').waitFor();
    await attrIs(conversationItem(B.page, ALICE.user).getByTestId('unread-badge'), 'data-count', '0');
    assert.equal(await conversationItem(B.page, ALICE.user).getByTestId('unread-badge').isVisible(), false);
  });

  step('both chat live: delivered, and shown on the other side without reload', async () => {
    await conversationItem(B.page, ALICE.user).click();
    await connected(B.page, ALICE.user);

    await send(A.page, 'How are you?');
    await messageState(A.page, 'How are you?', DELIVERED);
    await message(B.page, 'How are you?');

    // Shift+Enter makes a new line; Enter sends
    const input = byId(B.page, 'message-input');
    await input.fill('Great, thanks!');
    await input.press('Shift+Enter');
    await input.pressSequentially('And you?');
    assert.equal(await input.inputValue(), 'Great, thanks!\nAnd you?');
    await input.press('Enter');
    await messageState(B.page, 'Great, thanks!\nAnd you?', DELIVERED);
    await message(A.page, 'Great, thanks!\nAnd you?');
    assert.equal(await input.inputValue(), '', 'the input is cleared after sending');

    await send(A.page, 'Fine! Shall we meet at 6?');
    await message(B.page, 'Fine! Shall we meet at 6?');
    await send(B.page, 'Sounds good, see you then!');
    await message(A.page, 'Sounds good, see you then!');
    await messageState(B.page, 'Sounds good, see you then!', DELIVERED);

    // seq order, no duplicates, on both sides
    for (const page of [A.page, B.page]) {
      const seqs = await shownSeqs(page);
      assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
    }
    // the list follows: last message, and no unread for the open conversation
    const item = conversationItem(A.page, BOB.user);
    await until('the list shows the last message', async () =>
      /^Sounds good, see you then!$/.test(await item.getByTestId('conversation-last').textContent()),
    );
    assert.equal(await item.getByTestId('unread-badge').getAttribute('data-count'), '0');
    await screenshot(A.page, '04-live-conversation');
    await screenshot(B.page, '05-phone-conversation');
  });

  step('a message containing <script> is shown as text', async () => {
    const evil = '<script>alert(1)</script><img src=x onerror="alert(2)"><b>bold?</b>';
    await send(A.page, evil);
    for (const page of [A.page, B.page]) {
      const m = await message(page, evil);
      assert.equal(await m.getByTestId('message-text').textContent(), evil);
      const list = byId(page, 'message-list');
      assert.equal(await list.locator('script, img, b').count(), 0, 'no element made from the message');
    }
    assert.deepEqual(A.problems.dialogs, []);
    assert.deepEqual(B.problems.dialogs, []);
  });

  step('empty and too long input get a notice and are not sent', async () => {
    const before = await shownSeqs(A.page);
    await send(A.page, '   ');
    await attrIs(byId(A.page, 'notice'), 'data-kind', 'rejected');
    assert.match(await byId(A.page, 'notice').textContent(), /empty/);

    const long = 'é'.repeat(2049); // 4098 bytes of UTF-8, over the 4096 limit
    await send(A.page, long);
    await byId(A.page, 'notice').getByText(/Too long: 4,?098 bytes/).waitFor();
    assert.equal(await byId(A.page, 'message-input').inputValue(), long, 'the text stays to be shortened');
    assert.match(await byId(A.page, 'byte-count').textContent(), /4,?098 \/ 4096/);
    assert.deepEqual(await shownSeqs(A.page), before, 'nothing was sent');
    await byId(A.page, 'message-input').fill('');
  });

  step("Alice's fourth message to a silent new user is refused with the limit notice", async () => {
    const reg = await server.http('POST', '/user/register', {
      nick_name: CAROL.nick,
      user_name: CAROL.user,
      password: CAROL.password,
    });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));

    await startWith(A.page, CAROL.user);
    for (const n of [1, 2, 3]) {
      await send(A.page, `Hello Carol (${n})`);
      await messageState(A.page, `Hello Carol (${n})`, 'stored');
    }
    await send(A.page, 'Hello Carol (4)');
    await messageState(A.page, 'Hello Carol (4)', 'refused');
    const m = await message(A.page, 'Hello Carol (4)');
    assert.equal(await m.getAttribute('data-seq'), null, 'the refused message has no seq: nothing stored');
    assert.equal(await m.getByTestId('message-state').textContent(), 'Not sent');
    await attrIs(byId(A.page, 'notice'), 'data-kind', 'limit');
    assert.match(await byId(A.page, 'notice').textContent(), /Not sent: Carol has not answered yet/);

    // the list shows both conversations, newest first
    const order = () => A.page.getByTestId('conversation-item').evaluateAll((els) => els.map((e) => e.dataset.userName));
    const carol = conversationItem(A.page, CAROL.user);
    await until(
      'Carol above Bob in the list, with the last stored message',
      async () =>
        (await order()).join() === [CAROL.user, BOB.user].join() &&
        (await carol.getByTestId('conversation-last').textContent()) === 'You: Hello Carol (3)',
    );
    assert.equal(await carol.getByTestId('unread-badge').getAttribute('data-count'), '0');
    await screenshot(A.page, '06-no-reply-limit');
  });

  step('a dropped connection says so, reconnects, and sends the waiting message once', async () => {
    await conversationItem(A.page, BOB.user).click();
    await connected(A.page, BOB.user);
    await connected(B.page, ALICE.user);

    const port = server.port;
    await server.stop();
    await attrIs(byId(A.page, 'connection-status'), 'data-status', 'reconnecting');
    await attrIs(byId(A.page, 'notice'), 'data-kind', 'reconnecting');
    assert.match(await byId(A.page, 'notice').textContent(), /Reconnecting/);

    await send(A.page, 'Sent while the line was down');
    await messageState(A.page, 'Sent while the line was down', 'sending');
    await screenshot(A.page, '07-reconnecting');

    await server.start(port);
    await attrIs(byId(A.page, 'connection-status'), 'data-status', 'open', 30_000);
    const m = await message(A.page, 'Sent while the line was down');
    await until('the waiting message stored', async () =>
      ['delivered', 'stored', 'read'].includes(await m.getByTestId('message-state').getAttribute('data-state')),
    );
    await attrIs(byId(B.page, 'connection-status'), 'data-status', 'open', 30_000);
    await message(B.page, 'Sent while the line was down'); // live, or fetched after B's reconnect
    const seqsA = await shownSeqs(A.page);
    assert.deepEqual(seqsA, [...new Set(seqsA)].sort((x, y) => x - y), 'seq order, no duplicates');
  });

  step('reload keeps the session and the conversation; older history pages in', async () => {
    // enough messages for more than one history page (20)
    for (let i = 1; i <= 22; i++) await send(A.page, `Batch message ${i}`);
    await messageState(A.page, 'Batch message 22', DELIVERED);
    await message(B.page, 'Batch message 22');

    await A.page.reload();
    await loggedInAs(A.page, ALICE);
    await connected(A.page, BOB.user);
    await message(A.page, 'Batch message 22');
    const firstPage = await shownSeqs(A.page);
    assert.equal(firstPage[firstPage.length - 1], 29, 'the newest message at the bottom');
    assert.ok(firstPage.length >= 20 && firstPage.length < 29, `one page of context (${firstPage.length})`);
    assert.deepEqual(firstPage, Array.from({ length: firstPage.length }, (_, i) => 30 - firstPage.length + i));

    const older = byId(A.page, 'load-older');
    await older.waitFor();
    await older.click();
    await until('the second page', async () => (await shownSeqs(A.page)).length === 29);
    await byId(A.page, 'history-end').waitFor();
    assert.equal(await older.isVisible(), false, 'no more to load');
    const all = await shownSeqs(A.page);
    assert.deepEqual(all, Array.from({ length: 29 }, (_, i) => i + 1));
    await message(A.page, 'Hi Bob, are you there?');
  });

  step('a logout elsewhere ends the session on this page too', async () => {
    await connected(B.page, ALICE.user);
    const token = await B.page.evaluate(() => sessionStorage.getItem('chat.token'));
    const out = await server.http('POST', '/user/logout', undefined, token);
    assert.equal(out.status, 200);
    await byId(B.page, 'login-form').waitFor();
    await byId(B.page, 'auth-notice').getByText('Your session has ended').waitFor();
    assert.equal(await B.page.evaluate(() => sessionStorage.getItem('chat.token')), null);
  });

  step('logout ends the session, also after a reload', async () => {
    const token = await A.page.evaluate(() => sessionStorage.getItem('chat.token'));
    await logOut(A.page);
    assert.equal(await A.page.evaluate(() => sessionStorage.getItem('chat.token')), null);
    await screenshot(A.page, '08-logged-out');
    await A.page.reload();
    await byId(A.page, 'login-form').waitFor();
    assert.equal(await byId(A.page, 'home-view').isVisible(), false);
    // the server forgot the token too
    const me = await server.http('GET', '/user/me', undefined, token);
    assert.equal(me.status, 401);
  });

  test('no script errors on either page', async () => {
    for (const [who, p] of [
      ['Alice', A],
      ['Bob', B],
    ]) {
      assert.deepEqual(p.problems.pageErrors, [], `${who}: page errors`);
      assert.deepEqual(p.problems.consoleErrors, [], `${who}: console errors`);
      assert.deepEqual(p.problems.dialogs, [], `${who}: dialogs`);
    }
  });
});
