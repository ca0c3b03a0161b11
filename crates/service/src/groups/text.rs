//! The text of a group's system messages ("alice added bob"): what a client without its own
//! rendering of `event` shows.

use chat_model::{GroupAction, GroupEvent, User};

/// Users a sentence names at most.
const NAMED: usize = 10;

/// The sentence for `event`; `users` holds (at least) the actor and the users it names.
pub(super) fn describe(event: &GroupEvent, users: &[User]) -> String {
    let name = |id: i64| {
        users.iter().find(|u| u.id as i64 == id).map_or_else(|| format!("user {id}"), |u| u.user_name.clone())
    };
    let actor = name(event.actor);
    // a big group's creation names the first few
    let mut named = event.users.iter().take(NAMED).map(|&u| name(u)).collect::<Vec<_>>().join(", ");
    if event.users.len() > NAMED {
        named.push_str(&format!(" and {} others", event.users.len() - NAMED));
    }
    let group_name = event.name.as_deref().unwrap_or_default();
    match event.action {
        GroupAction::Created if named.is_empty() => format!("{actor} created the group \"{group_name}\""),
        GroupAction::Created => format!("{actor} created the group \"{group_name}\" with {named}"),
        GroupAction::Added => format!("{actor} added {named}"),
        GroupAction::Removed => format!("{actor} removed {named}"),
        GroupAction::Left => format!("{actor} left"),
        GroupAction::Renamed => format!("{actor} renamed the group to \"{group_name}\""),
        GroupAction::RoleChanged => {
            let role = match event.role.as_deref() {
                Some("admin") => "an admin",
                _ => "a member",
            };
            format!("{actor} made {named} {role}")
        }
        GroupAction::OwnerChanged => format!("{actor} handed the group to {named}"),
        GroupAction::Dissolved => format!("{actor} dissolved the group"),
    }
}
