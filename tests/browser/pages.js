// What the tests do on a page of the web client, and what they wait for there: logging in,
// direct conversations, messages, the list, typing, and groups (their list items, system lines,
// senders, "read by", the members panel).
'use strict';

const assert = require('node:assert/strict');
const { until, attrIs } = require('./harness.js');

const byId = (page, id) => page.getByTestId(id);

/** The message bubbles in the open conversation whose text is exactly `text`. */
const messages = (page, text) =>
  byId(page, 'message-list')
    .getByTestId('message')
    .filter({ has: page.getByTestId('message-text').getByText(text, { exact: true }) });

/** The one message with exactly this text; waits for it. */
async function message(page, text) {
  const m = messages(page, text);
  await m.first().waitFor();
  assert.equal(await m.count(), 1, `one message "${text}" (no duplicate)`);
  return m;
}

/** The list item of the direct conversation with `userName`. */
const conversationItem = (page, userName) => page.locator(`[data-testid="conversation-item"][data-user-name="${userName}"]`);

async function loggedInAs(page, u) {
  await byId(page, 'home-view').waitFor();
  await until(`logged in as ${u.user}`, async () => (await byId(page, 'me-user-name').textContent()) === `@${u.user}`);
}

async function logIn(page, u) {
  await byId(page, 'login-form').waitFor();
  await byId(page, 'login-user-name').fill(u.user);
  await byId(page, 'login-password').fill(u.password);
  await byId(page, 'login-password').press('Enter');
  await loggedInAs(page, u);
}

/** The direct conversation with `userName` is open and its socket connected. */
async function connected(page, userName) {
  await until(`conversation with ${userName}`, async () => (await byId(page, 'peer-user-name').textContent()) === `@${userName}`);
  await attrIs(byId(page, 'connection-status'), 'data-status', 'open');
}

async function send(page, text) {
  const input = byId(page, 'message-input');
  await input.fill(text);
  await input.press('Enter');
}

/** The seqs of the shown messages (a group's system lines too), in page order. */
const shownSeqs = (page) =>
  byId(page, 'message-list')
    .locator('li[data-seq]')
    .evaluateAll((els) => els.map((e) => Number(e.dataset.seq)).filter((n) => n > 0));

/** The app's Back button on a narrow screen; on a wide one (no such button) the browser's. */
async function backToList(page) {
  if (await byId(page, 'back-button').isVisible()) await byId(page, 'back-button').click();
  else await page.goBack();
  await until('no conversation open', async () => (await page.locator('#app').getAttribute('data-pane')) === 'list');
}

/**
 * Presses the keys of `text` in `input`, one at a time, until `shown` is visible (the server
 * forwards one typing frame per 2 s, so a keystroke right after a forwarded one may not show).
 */
function typeUntilShown(input, shown, text, timeout = 6000) {
  let i = 0;
  return until(
    'the typing indicator',
    async () => {
      await input.press(text[i++ % text.length]);
      return shown.isVisible();
    },
    timeout,
  );
}

/** Counts what a page asks the server: /conversations requests, WebSockets, frames sent. */
function watch(page) {
  const seen = { lists: 0, sockets: [], sent: [] };
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/conversations') seen.lists += 1;
  });
  page.on('websocket', (ws) => {
    seen.sockets.push(ws.url());
    ws.on('framesent', (f) => {
      try {
        seen.sent.push(JSON.parse(f.payload));
      } catch {
        // not JSON: not ours
      }
    });
  });
  return seen;
}

// ---- groups ----------------------------------------------------------------------------

const groupItem = (page, id) => page.locator(`[data-testid="conversation-item"][data-group-id="${id}"]`);
const groupBadge = (page, id) => groupItem(page, id).getByTestId('unread-badge');
const member = (page, userName) => byId(page, 'member-list').locator(`[data-testid="member-item"][data-user-name="${userName}"]`);

/** The open conversation is the group named `name`, its socket connected. */
async function groupOpen(page, name) {
  await until(`the group “${name}” open`, async () =>
    (await page.locator('[data-testid="chat"][data-kind="group"]').isVisible()) &&
    (await byId(page, 'peer-name').textContent()) === name,
  );
  await attrIs(byId(page, 'connection-status'), 'data-status', 'open');
}

/** Waits for the system line whose text is exactly `text` (the names come with the members). */
async function systemLine(page, text) {
  const lines = byId(page, 'message-list').getByTestId('system-message');
  let seen;
  await until(`the system message “${text}”`, async () => {
    seen = await lines.getByTestId('message-text').allTextContents();
    return seen.includes(text);
  }).catch((e) => {
    throw new Error(`${e.message}; the system messages were ${JSON.stringify(seen)}`);
  });
}

/** The sender shown above a message of someone else's. */
async function senderOf(page, text) {
  return (await message(page, text)).getByTestId('message-sender').textContent();
}

/** Waits until my message `text` says "Read by …" as given. */
async function readBy(page, text, label) {
  const state = (await message(page, text)).getByTestId('message-state');
  let seen;
  await until(`“${text}”: ${label}`, async () => (seen = await state.textContent()) === label).catch((e) => {
    throw new Error(`${e.message}; it said ${JSON.stringify(seen)}`);
  });
}

async function openPanel(page) {
  if (!(await byId(page, 'group-panel').isVisible())) await byId(page, 'members-button').click();
  await byId(page, 'group-panel').waitFor();
}

async function closePanel(page) {
  await byId(page, 'group-panel-close').click();
  await byId(page, 'group-panel').waitFor({ state: 'hidden' });
}

/** A button that asks to be clicked again, clicked twice. */
async function clickConfirmed(button) {
  await button.click();
  await attrIs(button, 'data-confirm', 'true');
  await button.click();
}

const token = (page) => page.evaluate(() => sessionStorage.getItem('chat.token'));

/** The window gets the focus back (what the user does coming back to the tab). */
const refocus = (page) => page.evaluate(() => window.dispatchEvent(new Event('focus')));

module.exports = {
  byId,
  messages,
  message,
  conversationItem,
  loggedInAs,
  logIn,
  connected,
  send,
  shownSeqs,
  backToList,
  typeUntilShown,
  watch,
  groupItem,
  groupBadge,
  member,
  groupOpen,
  systemLine,
  senderOf,
  readBy,
  openPanel,
  closePanel,
  clickConfirmed,
  token,
  refocus,
};
