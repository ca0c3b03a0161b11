// Group chat in the web client, three people in real Chromium (three isolated contexts): Alice
// creates a group in the UI, all three chat live (each message with its sender), typing, "read
// by k of n" after the others open the group, unread badges in the list for a member who is not
// looking, system messages inline as members are added, promoted and renamed, the owner removes
// Carol (she stops receiving), Bob leaves, a reload, a hand-over, and Dave (added later) seeing
// the group from his joining on. Run: node --test tests/browser/
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server, launchBrowser, openPage, until, attrIs, screenshot, clearScreenshots, steps } = require('./harness.js');
const {
  byId,
  messages,
  message,
  logIn,
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
} = require('./pages.js');

const ALICE = { nick: 'Alice', user: 'gr_alice', password: 'alice-password' };
const BOB = { nick: 'Bob', user: 'gr_bob_1', password: 'bob-password' };
const CAROL = { nick: 'Carol', user: 'gr_carol', password: 'carol-password' };
const DAVE = { nick: 'Dave', user: 'gr_dave1', password: 'dave-password' }; // added later; logs in at the end

const DESKTOP = { viewport: { width: 1100, height: 700 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

// ---- the scenario ----------------------------------------------------------------------

describe('group chat in the web client', () => {
  const server = new Server('browser-groups-server.log');
  let browser;
  let A; // Alice, desktop: creates and owns the group
  let B; // Bob, desktop
  let C; // Carol, phone width: the list and the conversation are separate panes
  let D; // Dave, desktop: logs in only at the end
  let seenC;
  let groupId;
  let aliceToken;
  const ids = {};

  before(async () => {
    clearScreenshots('groups-');
    await server.start();
    for (const u of [ALICE, BOB, CAROL, DAVE]) {
      const reg = await server.http('POST', '/user/register', { nick_name: u.nick, user_name: u.user, password: u.password });
      assert.equal(reg.status, 200, JSON.stringify(reg.body));
      ids[u.user] = reg.body.data.id;
    }
    browser = await launchBrowser();
    A = await openPage(browser, server.base, DESKTOP);
    B = await openPage(browser, server.base, DESKTOP);
    C = await openPage(browser, server.base, PHONE);
    seenC = watch(C.page);
    for (const [p, u] of [
      [A, ALICE],
      [B, BOB],
      [C, CAROL],
    ]) {
      await p.page.goto('/');
      await logIn(p.page, u);
    }
    aliceToken = await token(A.page);
  });

  const step = steps({
    prefix: 'groups-',
    timeout: 90_000,
    pages: () => [
      ['alice', A],
      ['bob', B],
      ['carol', C],
      ['dave', D],
    ],
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop();
    await server.cleanUp();
  });

  /** Bob's (or anyone's) read position in the group, as the server has it. */
  async function positionOf(userName) {
    const res = await server.http('GET', `/groups/${groupId}`, undefined, aliceToken);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.data.members.find((m) => m.user_name === userName)?.read_seq ?? 0;
  }

  step('Alice creates a group in the UI: a name and members by user name', async () => {
    const page = A.page;
    await byId(page, 'new-group-button').click();
    await byId(page, 'group-create-form').waitFor();
    // a blank name and an unknown user are named
    await byId(page, 'group-create-submit').click();
    await byId(page, 'group-create-error').getByText('Give the group a name').waitFor();
    await byId(page, 'group-name-input').fill('Weekend trip');
    await byId(page, 'group-member-input').fill('nobody_here');
    await byId(page, 'group-member-input').press('Enter');
    await byId(page, 'group-create-error').getByText('No user named “nobody_here”').waitFor();
    // Enter adds a member; so does the Add button
    await byId(page, 'group-member-input').fill(BOB.user);
    await byId(page, 'group-member-input').press('Enter');
    await page.locator(`[data-testid="group-member-chip"][data-user-name="${BOB.user}"]`).waitFor();
    await byId(page, 'group-member-input').fill(CAROL.user);
    await byId(page, 'group-member-add').click();
    await page.locator(`[data-testid="group-member-chip"][data-user-name="${CAROL.user}"]`).waitFor();
    assert.equal(await byId(page, 'group-create-error').isVisible(), false, 'the error went once a member was added');
    await screenshot(page, 'groups-01-create-form');

    await byId(page, 'group-create-submit').click();
    await groupOpen(page, 'Weekend trip');
    assert.equal(await byId(page, 'group-create-form').isVisible(), false);
    groupId = Number(/#group\/(\d+)$/.exec(page.url())?.[1]);
    assert.ok(groupId > 0, `the address names the group: ${page.url()}`);
    assert.equal(await byId(page, 'peer-user-name').textContent(), '3 members');
    await systemLine(page, 'You created the group “Weekend trip” with Bob and Carol');
    const item = groupItem(page, groupId);
    await item.waitFor();
    assert.equal(await item.getByTestId('conversation-nick').textContent(), 'Weekend trip');
  });

  step('the group appears live in the others’ lists, with an unread badge', async () => {
    const listsBefore = seenC.lists;
    for (const [p, you] of [
      [B.page, 'Alice created the group “Weekend trip” with you and Carol'],
      [C.page, 'Alice created the group “Weekend trip” with Bob and you'],
    ]) {
      const item = groupItem(p, groupId);
      await item.waitFor();
      await attrIs(groupBadge(p, groupId), 'data-count', '1');
      assert.equal(await item.getByTestId('conversation-nick').textContent(), 'Weekend trip');
      await until('the list names who created it', async () => (await item.getByTestId('conversation-last').textContent()) === you);
    }
    // a group new to the list is asked for once (it named nothing else); no polling
    assert.ok(seenC.lists - listsBefore <= 1, `at most one /conversations request: ${seenC.lists - listsBefore}`);
    await screenshot(C.page, 'groups-02-phone-list-new-group');
  });

  step('all three chat live: each sees the others’ messages with their sender', async () => {
    for (const p of [B.page, C.page]) {
      await groupItem(p, groupId).click();
      await groupOpen(p, 'Weekend trip');
      await attrIs(groupBadge(p, groupId), 'data-count', '0');
    }
    await systemLine(B.page, 'Alice created the group “Weekend trip” with you and Carol');

    await send(A.page, 'Who is in for Saturday?');
    await send(B.page, 'Me!');
    await message(B.page, 'Who is in for Saturday?'); // Bob answers what he has seen
    await send(C.page, 'Count me in');
    for (const [p, others] of [
      [A.page, [['Me!', 'Bob'], ['Count me in', 'Carol']]],
      [B.page, [['Who is in for Saturday?', 'Alice'], ['Count me in', 'Carol']]],
      [C.page, [['Who is in for Saturday?', 'Alice'], ['Me!', 'Bob']]],
    ]) {
      for (const [text, from] of others) {
        assert.equal(await senderOf(p, text), from, `“${text}” shows its sender`);
        assert.equal(await (await message(p, text)).getAttribute('data-mine'), 'false');
      }
    }
    // my own carry no sender, and "read by" instead
    const mine = await message(A.page, 'Who is in for Saturday?');
    assert.equal(await mine.getAttribute('data-mine'), 'true');
    assert.equal(await mine.getByTestId('message-sender').isVisible(), false);
    assert.match(await mine.getByTestId('message-state').textContent(), /^Read by [0-2] of 2$/);
    // the same timeline on every page: in seq order, no gaps, no duplicates
    await until('every page shows the four messages', async () => {
      const all = await Promise.all([A.page, B.page, C.page].map(shownSeqs));
      return all.every((seqs) => seqs.join() === '1,2,3,4');
    });
    await screenshot(A.page, 'groups-03-live-chat');
    await screenshot(C.page, 'groups-04-phone-live-chat');
  });

  step('“Bob is typing…” shows to the others and clears when his message comes', async () => {
    const typingA = byId(A.page, 'peer-typing');
    const typingC = byId(C.page, 'peer-typing');
    assert.equal(await typingA.isVisible(), false);
    const input = byId(B.page, 'message-input');
    await typeUntilShown(input, typingA, 'Let me check the weather');
    assert.equal(await typingA.textContent(), 'Bob is typing…');
    await typingC.waitFor();
    assert.equal(await typingC.textContent(), 'Bob is typing…');
    await screenshot(A.page, 'groups-05-typing');
    await input.fill('Sunny all day');
    await input.press('Enter');
    await message(A.page, 'Sunny all day');
    await typingA.waitFor({ state: 'hidden', timeout: 1500 }); // sooner than the ~3.5 s timeout
  });

  step('a member not looking gets an unread badge; “read by k of n” follows as the others open the group', async () => {
    await backToList(B.page);
    await backToList(C.page);
    const listsBefore = seenC.lists;
    await send(A.page, 'Bring snacks');
    await readBy(A.page, 'Bring snacks', 'Read by 0 of 2');
    for (const p of [B.page, C.page]) {
      await attrIs(groupBadge(p, groupId), 'data-count', '1');
      await until('the last message with its sender', async () =>
        (await groupItem(p, groupId).getByTestId('conversation-last').textContent()) === 'Alice: Bring snacks',
      );
    }
    await send(A.page, 'And water');
    await attrIs(groupBadge(C.page, groupId), 'data-count', '2');
    assert.equal(seenC.lists, listsBefore, 'the badge followed the socket: no /conversations request');
    await screenshot(C.page, 'groups-06-phone-unread-badge');
    const seq = Number(await (await message(A.page, 'And water')).getAttribute('data-seq'));

    // Bob opens the group: once his position is in, Alice sees it when she comes back to the window
    await groupItem(B.page, groupId).click();
    await groupOpen(B.page, 'Weekend trip');
    await message(B.page, 'And water');
    await attrIs(groupBadge(B.page, groupId), 'data-count', '0');
    await until('Bob’s read position on the server', async () => (await positionOf(BOB.user)) >= seq);
    await refocus(A.page);
    await readBy(A.page, 'And water', 'Read by 1 of 2');
    await readBy(A.page, 'Bring snacks', 'Read by 1 of 2');
    await screenshot(A.page, 'groups-07-read-by-1-of-2');

    // Carol opens it and answers: her message arriving brings Alice the new positions
    await groupItem(C.page, groupId).click();
    await groupOpen(C.page, 'Weekend trip');
    await message(C.page, 'And water');
    await until('Carol’s read position on the server', async () => (await positionOf(CAROL.user)) >= seq);
    await send(C.page, 'On my way');
    await message(A.page, 'On my way');
    await readBy(A.page, 'And water', 'Read by 2 of 2');
    const state = (await message(A.page, 'And water')).getByTestId('message-state');
    assert.equal(await state.getAttribute('data-state'), 'read');
  });

  step('the owner adds a member and makes Bob an admin; Bob renames the group: all inline', async () => {
    await openPanel(A.page);
    assert.equal(await byId(A.page, 'group-role').textContent(), 'You are the owner.');
    await byId(A.page, 'add-member-input').fill(DAVE.user);
    await byId(A.page, 'add-member-submit').click();
    await member(A.page, DAVE.user).waitFor();
    await systemLine(A.page, 'You added Dave');
    await systemLine(B.page, 'Alice added Dave');
    await until('4 members in the header', async () => (await byId(A.page, 'peer-user-name').textContent()) === '4 members');

    await member(A.page, BOB.user).getByTestId('member-make-admin').click();
    await attrIs(member(A.page, BOB.user), 'data-role', 'admin');
    await systemLine(A.page, 'You made Bob an admin');
    await systemLine(B.page, 'Alice made you an admin');
    await systemLine(C.page, 'Alice made Bob an admin');
    await screenshot(A.page, 'groups-08-members-panel-owner');

    // an admin renames and removes plain members, but neither the owner nor changes roles
    await openPanel(B.page);
    await until('Bob sees he is an admin', async () => (await byId(B.page, 'group-role').textContent()) === 'You are an admin.');
    assert.equal(await member(B.page, ALICE.user).getByTestId('member-remove').count(), 0, 'an admin may not remove the owner');
    assert.equal(await member(B.page, CAROL.user).getByTestId('member-remove').count(), 1);
    assert.equal(await byId(B.page, 'member-list').getByTestId('member-make-admin').count(), 0, 'only the owner changes roles');
    await byId(B.page, 'rename-input').fill('Saturday hike');
    await byId(B.page, 'rename-submit').click();
    for (const [p, line] of [
      [A.page, 'Bob renamed the group to “Saturday hike”'],
      [B.page, 'You renamed the group to “Saturday hike”'],
      [C.page, 'Bob renamed the group to “Saturday hike”'],
    ]) {
      await systemLine(p, line);
      await groupOpen(p, 'Saturday hike');
    }
    await closePanel(B.page);

    // a plain member sees the members and may only leave
    await openPanel(C.page);
    assert.equal(await byId(C.page, 'group-role').textContent(), 'You are a member.');
    assert.equal(await byId(C.page, 'rename-form').isVisible(), false);
    assert.equal(await byId(C.page, 'add-member-form').isVisible(), false);
    assert.equal(await byId(C.page, 'member-list').locator('button').count(), 0, 'no changes for a plain member');
    assert.equal(await byId(C.page, 'leave-group').isVisible(), true);
    assert.equal(await byId(C.page, 'member-list').getByTestId('member-item').count(), 4);
    await screenshot(C.page, 'groups-09-phone-members-panel');
    await closePanel(C.page);
  });

  step('the owner removes Carol: she is told, and stops receiving', async () => {
    await clickConfirmed(member(A.page, CAROL.user).getByTestId('member-remove'));
    await member(A.page, CAROL.user).waitFor({ state: 'detached' });
    await systemLine(A.page, 'You removed Carol');
    await systemLine(B.page, 'Alice removed Carol');
    await systemLine(C.page, 'Alice removed you');
    await attrIs(byId(C.page, 'notice'), 'data-kind', 'gone');
    assert.match(await byId(C.page, 'notice').textContent(), /Alice removed you from this group/);
    assert.equal(await byId(C.page, 'message-input').isDisabled(), true, 'Carol can no longer write here');
    await until('3 members', async () => (await byId(A.page, 'peer-user-name').textContent()) === '3 members');

    await send(A.page, 'Carol is out of the group now');
    await message(B.page, 'Carol is out of the group now');
    await send(B.page, 'Noted');
    await message(A.page, 'Noted');
    // pushed to every member in one pass: Bob has both, Carol neither
    assert.equal(await messages(C.page, 'Carol is out of the group now').count(), 0);
    assert.equal(await messages(C.page, 'Noted').count(), 0);
    await screenshot(C.page, 'groups-10-phone-removed');
    const res = await server.http('GET', `/groups/${groupId}`, undefined, await token(C.page));
    assert.equal(res.status, 403, 'the server agrees she is out');

    await backToList(C.page);
    await until('her list says why', async () =>
      (await groupItem(C.page, groupId).getByTestId('conversation-last').textContent()) === 'Alice removed you',
    );
    assert.equal(await messages(C.page, 'Noted').count(), 0);

    // the group's address, after a reload: not hers to read, and not in her list any more
    await C.page.evaluate((id) => history.pushState(null, '', `#group/${id}`), groupId);
    await C.page.reload();
    await attrIs(byId(C.page, 'notice'), 'data-kind', 'gone');
    assert.equal(await byId(C.page, 'notice').textContent(), 'You are not a member of this group.');
    assert.equal(await byId(C.page, 'message-input').isDisabled(), true);
    assert.equal(await byId(C.page, 'message-list').locator('li').count(), 0, 'nothing of it is shown');
    await backToList(C.page);
    await byId(C.page, 'conversation-list-empty').waitFor();
  });

  step('Bob leaves: the group goes from his list, and the others see him go', async () => {
    await openPanel(B.page);
    await clickConfirmed(byId(B.page, 'leave-group'));
    await until('Bob is back in the list', async () => (await B.page.locator('#app').getAttribute('data-pane')) === 'list');
    await groupItem(B.page, groupId).waitFor({ state: 'detached' });
    assert.equal(B.page.url().includes('#group/'), false);
    await systemLine(A.page, 'Bob left');
    await until('2 members', async () => (await byId(A.page, 'peer-user-name').textContent()) === '2 members');
    await openPanel(A.page);
    await member(A.page, BOB.user).waitFor({ state: 'detached' });
    assert.deepEqual(
      await byId(A.page, 'member-list').getByTestId('member-item').evaluateAll((els) => els.map((e) => e.dataset.userName)),
      [ALICE.user, DAVE.user],
    );
    await screenshot(A.page, 'groups-11-after-leave');

    // nothing more reaches him
    await send(A.page, 'Just the two of us');
    await readBy(A.page, 'Just the two of us', 'Read by 0 of 1');
    assert.equal(await groupItem(B.page, groupId).count(), 0);
  });

  step('a reload reopens the group with its senders and system lines; the owner hands it over', async () => {
    const page = A.page;
    const before = await shownSeqs(page);
    await page.reload();
    await groupOpen(page, 'Saturday hike');
    await message(page, 'Just the two of us');
    await systemLine(page, 'Bob left');
    // Bob and Carol are no longer members, and no one lists them: the tab kept their names
    assert.equal(await senderOf(page, 'Noted'), 'Bob');
    assert.equal(await senderOf(page, 'On my way'), 'Carol');
    await systemLine(page, 'You removed Carol');
    const after = await shownSeqs(page);
    assert.deepEqual(after, before.slice(before.length - after.length), 'the newest page, as before');
    assert.equal(await byId(page, 'peer-user-name').textContent(), '2 members');

    await openPanel(page);
    await clickConfirmed(member(page, DAVE.user).getByTestId('member-make-owner'));
    await attrIs(member(page, DAVE.user), 'data-role', 'owner');
    await attrIs(member(page, ALICE.user), 'data-role', 'admin');
    await until('Alice is an admin now', async () => (await byId(page, 'group-role').textContent()) === 'You are an admin.');
    await systemLine(page, 'You handed the group over to Dave');
    // an admin may not remove the owner, nor change roles
    assert.equal(await member(page, DAVE.user).locator('button').count(), 0);
    assert.equal(await byId(page, 'rename-form').isVisible(), true);
    await screenshot(page, 'groups-12-handed-over');
  });

  step('Dave, added later, sees the group from his joining on, and now owns it', async () => {
    D = await openPage(browser, server.base, DESKTOP);
    await D.page.goto('/');
    await logIn(D.page, DAVE);
    const item = groupItem(D.page, groupId);
    await item.waitFor();
    assert.ok(Number(await groupBadge(D.page, groupId).getAttribute('data-count')) > 0, 'unread since he joined');
    await item.click();
    await groupOpen(D.page, 'Saturday hike');
    await message(D.page, 'Just the two of us');
    await byId(D.page, 'history-end').waitFor();
    // his "added" message is the first he sees; what was said before is not his to read
    const first = byId(D.page, 'message-list').locator('li[data-seq]').first();
    assert.equal(await first.getAttribute('data-testid'), 'system-message');
    await systemLine(D.page, 'Alice added you');
    assert.equal(await first.getByTestId('message-text').textContent(), 'Alice added you');
    assert.equal(await messages(D.page, 'Bring snacks').count(), 0);
    // Bob left before this page saw the members: his message has no name to show, and the
    // system lines about him are the server's own words
    assert.equal(await senderOf(D.page, 'Noted'), 'Former member');
    await systemLine(D.page, `${BOB.user} left`);
    await systemLine(D.page, `Alice made ${BOB.user} an admin`); // the names known here, the others' user names
    await systemLine(D.page, 'Alice handed the group over to you');
    await openPanel(D.page);
    await until('Dave is the owner', async () => (await byId(D.page, 'group-role').textContent()) === 'You are the owner.');
    await screenshot(D.page, 'groups-13-late-member');
  });

  test('no script errors on any page', async () => {
    for (const [who, p] of [
      ['Alice', A],
      ['Bob', B],
      ['Carol', C],
      ['Dave', D],
    ]) {
      if (!p) continue;
      assert.deepEqual(p.problems.pageErrors, [], `${who}: page errors`);
      assert.deepEqual(p.problems.consoleErrors, [], `${who}: console errors`);
      assert.deepEqual(p.problems.dialogs, [], `${who}: dialogs`);
    }
  });
});
