// The members panel of the open group: its name (renamed by the owner and admins), the members
// with their roles, and the changes my role allows: add and remove members (the owner and
// admins; an admin removes plain members only), make admin or member and hand over (the owner),
// leave (anyone). Each change answers the group as it is now, which is shown at once; the
// others hear of it through the system message the server pushes.

import { api } from '/assets/api.js';
import { el, initial } from '/assets/dom.js';
import { showMessage } from '/assets/list.js';

// A destructive button asks to be clicked again and waits this long for it.
const CONFIRM_MS = 5000;
const MAX_NAME_CHARS = 30;

const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: 'Member' };
const ROLE_SENTENCE = { owner: 'You are the owner.', admin: 'You are an admin.', member: 'You are a member.' };

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

export class GroupPanel {
  /** groups: the Groups (what is known of each group, and its context). */
  constructor(groups) {
    this.groups = groups;
    this.open = false;
    this.ui = {
      button: $('members-button'),
      panel: $('group-panel'),
      close: $('group-panel-close'),
      title: $('group-panel-title'),
      role: $('group-role'),
      renameForm: $('rename-form'),
      renameInput: $('rename-input'),
      count: $('member-count'),
      members: $('member-list'),
      addForm: $('add-member-form'),
      addInput: $('add-member-input'),
      error: $('group-panel-error'),
      leave: $('leave-group'),
    };
    this.bind();
  }

  get ctx() {
    return this.groups.ctx;
  }

  /** The open group's id, or null. */
  openId() {
    return this.ctx.conv()?.group?.id ?? null;
  }

  error(text) {
    showMessage(this.ui.error, text);
  }

  /** Draws the panel for `info` (null: no group open). */
  render(info) {
    const { ui } = this;
    ui.panel.hidden = !this.open || !info;
    if (ui.panel.hidden) return;
    const me = this.ctx.me();
    const role = info.my_role;
    const manage = !info.gone && (role === 'owner' || role === 'admin');
    ui.title.textContent = info.name;
    ui.role.textContent = info.gone ? info.goneText : (ROLE_SENTENCE[role] ?? '');
    ui.renameForm.hidden = !manage;
    if (document.activeElement !== ui.renameInput) ui.renameInput.value = info.name;
    ui.addForm.hidden = !manage;
    ui.leave.hidden = Boolean(info.gone);
    const members = info.gone ? [] : (info.members ?? []);
    ui.count.textContent = info.gone ? '' : `Members (${info.members ? members.length : info.member_count})`;
    // drawn again only when they changed: a button waiting for its confirming click stays
    const drawn = JSON.stringify([info.id, role, members.map((m) => [m.id, m.role, m.nick_name])]);
    if (ui.members.dataset.drawn === drawn) return;
    ui.members.dataset.drawn = drawn;
    ui.members.replaceChildren(...members.map((m) => this.memberRow(info, m, me)));
  }

  memberRow(info, m, me) {
    const id = info.id;
    const actions = [];
    if (m.id !== me.id && !info.gone) {
      if (info.my_role === 'owner') {
        const [label, testid, next] =
          m.role === 'member' ? ['Make admin', 'member-make-admin', 'admin'] : ['Make member', 'member-make-member', 'member'];
        actions.push(this.action(label, testid, () => api.setRole(id, m.id, next)));
        actions.push(this.action('Make owner', 'member-make-owner', () => api.handOver(id, m.id), 'Hand over?'));
      }
      if (info.my_role === 'owner' || (info.my_role === 'admin' && m.role === 'member')) {
        const remove = this.action('Remove', 'member-remove', () => api.removeMember(id, m.id), 'Confirm remove');
        remove.classList.add('danger');
        actions.push(remove);
      }
    }
    const role =
      m.role === 'member'
        ? null
        : el('span', { className: 'role', dataset: { testid: 'member-role', role: m.role } }, ROLE_LABEL[m.role]);
    return el('li', { className: 'member', dataset: { testid: 'member-item', userName: m.user_name, role: m.role } }, [
      el('span', { className: 'avatar small', attrs: { 'aria-hidden': 'true' } }, initial(m.nick_name)),
      el('span', { className: 'member-body' }, [
        el('span', { className: 'member-name' }, [
          el('strong', {}, m.nick_name),
          m.id === me.id ? el('span', { className: 'muted' }, ' (you)') : null,
          role,
        ]),
        el('span', { className: 'muted member-user' }, '@' + m.user_name),
      ]),
      actions.length ? el('span', { className: 'member-actions' }, actions) : null,
    ]);
  }

  /** A button that runs a change (`run` answers the group as it is now); `confirm`: ask first. */
  action(label, testid, run, confirm = null) {
    const button = el('button', { type: 'button', className: 'button ghost small', dataset: { testid } }, label);
    button.addEventListener('click', () => {
      if (confirm && button.dataset.confirm !== 'true') {
        askConfirm(button, label, confirm);
        return;
      }
      this.change(button, run);
    });
    return button;
  }

  /** Runs a change from the panel: its answer (the group now) is shown, its error in the panel. */
  async change(button, run) {
    this.error(null);
    if (button) button.disabled = true;
    try {
      const view = await run();
      this.groups.setView(view);
      return true;
    } catch (e) {
      if (e.status !== 401) this.error(e.message);
      return false;
    } finally {
      if (button) button.disabled = false;
    }
  }

  bind() {
    const { ui } = this;
    ui.button.addEventListener('click', () => {
      this.open = !this.open;
      this.error(null);
      this.groups.render();
      if (this.open) ui.close.focus();
    });
    const close = () => {
      this.open = false;
      this.groups.render();
      ui.button.focus();
    };
    ui.close.addEventListener('click', close);
    // Escape in the panel closes it (not the conversation, as it does elsewhere on a phone)
    ui.panel.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      ev.stopPropagation();
      close();
    });
    ui.renameForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = this.openId();
      const name = ui.renameInput.value.trim();
      if (id == null) return;
      if (!name || [...name].length > MAX_NAME_CHARS) {
        this.error(`A group name has 1 to ${MAX_NAME_CHARS} characters.`);
        return;
      }
      ui.renameInput.blur();
      this.change(ui.renameForm.querySelector('button'), () => api.renameGroup(id, name));
    });
    ui.addForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = this.openId();
      if (id != null) this.addByName(id, ui.addInput.value.trim());
    });
    ui.leave.addEventListener('click', async () => {
      const id = this.openId();
      if (id == null) return;
      if (ui.leave.dataset.confirm !== 'true') {
        askConfirm(ui.leave, 'Leave group', `Leave “${this.groups.info(id).name}”?`);
        return;
      }
      const me = this.ctx.me().id;
      if (await this.change(ui.leave, () => api.removeMember(id, me))) this.groups.setGone(id, 'left', 'You left this group.');
    });
  }

  async addByName(id, userName) {
    const { ui } = this;
    this.error(null);
    if (!userName) {
      this.error('Enter the user name of the person to add.');
      return;
    }
    let user;
    try {
      user = await api.lookup(userName);
    } catch (e) {
      this.error(e.status === 404 ? `No user named “${userName}”.` : e.message);
      return;
    }
    if (this.groups.info(id).members?.some((m) => m.id === user.id)) {
      this.error(`${user.nick_name} is already a member.`);
      return;
    }
    if (await this.change(ui.addForm.querySelector('button'), () => api.addMembers(id, [user.id]))) ui.addInput.value = '';
  }
}

/** First click of a destructive button: it says `text` and waits for a second click. */
function askConfirm(button, label, text) {
  button.dataset.confirm = 'true';
  button.textContent = text;
  clearTimeout(button._confirmTimer);
  button._confirmTimer = setTimeout(() => {
    button.dataset.confirm = 'false';
    button.textContent = label;
  }, CONFIRM_MS);
}
