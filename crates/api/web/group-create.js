// The "New group" form in the list pane: a name and members added by user name (each looked up
// as it is added, shown as a chip that can be taken out again). The creator is the owner.

import { api } from '/assets/api.js';
import { el } from '/assets/dom.js';
import { showMessage } from '/assets/list.js';

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const MAX_NAME_CHARS = 30;

/**
 * me(): the logged-in user; created(view): the new group (a GroupView with its members), to be
 * listed and opened.
 */
export function setUpGroupCreate({ me, created }) {
  const ui = {
    toggle: $('new-group-button'),
    form: $('group-create-form'),
    name: $('group-name-input'),
    member: $('group-member-input'),
    add: $('group-member-add'),
    chips: $('group-member-chips'),
    error: $('group-create-error'),
    cancel: $('group-create-cancel'),
    submit: $('group-create-submit'),
  };
  const chosen = new Map(); // user id -> {id, user_name, nick_name}

  function show(open) {
    ui.form.hidden = !open;
    ui.toggle.setAttribute('aria-expanded', String(open));
    if (open) ui.name.focus();
  }

  function reset() {
    ui.form.reset();
    chosen.clear();
    drawChips();
    showMessage(ui.error, null);
  }

  function drawChips() {
    ui.chips.replaceChildren(
      ...[...chosen.values()].map((u) => {
        const remove = el(
          'button',
          { type: 'button', className: 'chip-remove', attrs: { 'aria-label': `Take ${u.nick_name} out` } },
          '×',
        );
        remove.addEventListener('click', () => {
          chosen.delete(u.id);
          drawChips();
          ui.member.focus();
        });
        return el('li', { className: 'chip', dataset: { testid: 'group-member-chip', userName: u.user_name } }, [
          el('span', {}, u.nick_name),
          el('span', { className: 'muted' }, ` @${u.user_name}`),
          remove,
        ]);
      }),
    );
    ui.chips.hidden = chosen.size === 0;
  }

  /** Looks up the user name in the member field; true when it was added (or the field is empty). */
  async function addTyped() {
    const userName = ui.member.value.trim();
    if (!userName) return true;
    const self = me();
    if (userName.toLowerCase() === self.user_name.toLowerCase()) {
      showMessage(ui.error, 'You are in the group already: you create it.');
      return false;
    }
    let user;
    try {
      user = await api.lookup(userName);
    } catch (e) {
      showMessage(ui.error, e.status === 404 ? `No user named “${userName}”.` : e.message);
      return false;
    }
    showMessage(ui.error, null);
    if (user.id !== self.id) chosen.set(user.id, user);
    ui.member.value = '';
    drawChips();
    return true;
  }

  ui.toggle.addEventListener('click', () => {
    const open = ui.form.hidden;
    if (open) reset();
    show(open);
  });
  ui.cancel.addEventListener('click', () => {
    reset();
    show(false);
    ui.toggle.focus();
  });
  ui.add.addEventListener('click', async () => {
    ui.add.disabled = true;
    try {
      await addTyped();
    } finally {
      ui.add.disabled = false;
      ui.member.focus();
    }
  });
  // Enter in the member field adds the member; it does not create the group yet
  ui.member.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.isComposing) {
      ev.preventDefault();
      ui.add.click();
    }
  });
  ui.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = ui.name.value.trim();
    if (!name || [...name].length > MAX_NAME_CHARS) {
      showMessage(ui.error, `Give the group a name of 1 to ${MAX_NAME_CHARS} characters.`);
      ui.name.focus();
      return;
    }
    ui.submit.disabled = true;
    ui.form.setAttribute('aria-busy', 'true');
    try {
      if (!(await addTyped())) return;
      const view = await api.createGroup(name, [...chosen.keys()]);
      reset();
      show(false);
      created(view);
    } catch (e) {
      if (e.status !== 401) showMessage(ui.error, e.message);
    } finally {
      ui.submit.disabled = false;
      ui.form.removeAttribute('aria-busy');
    }
  });

  return { reset: () => (reset(), show(false)) };
}
