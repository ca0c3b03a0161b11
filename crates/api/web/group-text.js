// The words of a group: its system messages in the members' names ("Alice added Bob"), from
// the message's event; the server's own line (in user names) when a name is not known here,
// with the names that are.

/** "Bob", "Bob and Carol", "Bob, Carol and Dave". */
export function joinNames(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

// The words of the server's own system lines, never taken for a user name in them.
const SYSTEM_WORDS = new Set(
  'a admin added an created dissolved group handed left made member removed renamed the to user with'.split(' '),
);

export class GroupText {
  /** names: user id -> {nick_name, user_name} (the members seen); me(): the logged-in user. */
  constructor(names, me) {
    this.names = names;
    this.me = me;
  }

  /** A user's name as a sentence uses it ("You" / "you" for me); null when not known. */
  nameOf(userId, start = false) {
    if (userId === this.me().id) return start ? 'You' : 'you';
    return this.names.get(userId)?.nick_name ?? null;
  }

  /**
   * A system message in the members' names ("Alice added Bob"); if a name is not known (a
   * member who left before this tab saw them), the server's words, with the names it knows.
   */
  systemText(m) {
    const ev = m.event;
    if (!ev) return this.localize(m.content);
    const actor = this.nameOf(ev.actor, true);
    const users = (Array.isArray(ev.users) ? ev.users : []).map((u) => this.nameOf(u));
    if (actor == null || users.includes(null)) return this.localize(m.content);
    const named = joinNames(users);
    const name = ev.name ?? '';
    switch (ev.action) {
      case 'created':
        return users.length ? `${actor} created the group “${name}” with ${named}` : `${actor} created the group “${name}”`;
      case 'added':
        return `${actor} added ${named}`;
      case 'removed':
        return `${actor} removed ${named}`;
      case 'left':
        return `${actor} left`;
      case 'renamed':
        return `${actor} renamed the group to “${name}”`;
      case 'role_changed':
        return `${actor} made ${named} ${ev.role === 'admin' ? 'an admin' : 'a member'}`;
      case 'owner_changed':
        return `${actor} handed the group over to ${named}`;
      case 'dissolved':
        return `${actor} dissolved the group`;
      default:
        return this.localize(m.content);
    }
  }

  /** The server's line ("alice_01 added bob_0001") with the nick names known here ("Alice added bob_0001"). */
  localize(content) {
    const me = this.me();
    const nick = new Map([...this.names.values()].map((n) => [n.user_name.toLowerCase(), n.nick_name]));
    // the group's name is quoted: left as it is
    return content
      .split(/("[^"]*")/)
      .map((part, i) =>
        i % 2
          ? part
          : part.replace(/\w+/g, (word, at) => {
              const key = word.toLowerCase();
              if (SYSTEM_WORDS.has(key)) return word;
              if (key === me.user_name.toLowerCase()) return i === 0 && at === 0 ? 'You' : 'you';
              return nick.get(key) ?? word;
            }),
      )
      .join('');
  }
}
