//! Who may change what in a group, decided on the group as it is inside the change's
//! transaction (its row locked): each rule returns the writes and the events to record, or
//! refuses with nothing written.

use chat_dao::group::{Decision, GroupWrite};
use chat_model::{
    GroupAction, GroupEvent,
    group::{Group, GroupMember, Role},
};

use crate::error::{ServiceError, ServiceResult};

/// The actor's role (a member whose joining is recorded), else not a member.
fn role_of(members: &[GroupMember], user: u64) -> ServiceResult<Role> {
    members.iter().find(|m| m.user_id == user && m.is_active()).map(GroupMember::role).ok_or(ServiceError::NotMember)
}

fn row(members: &[GroupMember], user: u64) -> ServiceResult<&GroupMember> {
    members.iter().find(|m| m.user_id == user).ok_or_else(|| ServiceError::Validation {
        field: "user".into(),
        message: format!("user {user} is not a member of this group"),
    })
}

fn event(action: GroupAction, actor: u64, users: &[u64]) -> GroupEvent {
    GroupEvent { action, actor: actor as i64, users: users.iter().map(|&u| u as i64).collect(), name: None, role: None }
}

fn decided(writes: Vec<GroupWrite>, events: &[GroupEvent]) -> Decision {
    Decision { writes, events: events.iter().map(|e| serde_json::to_string(e).unwrap_or_default()).collect() }
}

fn not_allowed(why: &str) -> ServiceError {
    ServiceError::NotAllowed(why.into())
}

pub(super) fn rename(members: &[GroupMember], actor: u64, name: String) -> ServiceResult<Decision> {
    if role_of(members, actor)? == Role::Member {
        return Err(not_allowed("only the owner or an admin may rename the group"));
    }
    let e = GroupEvent { name: Some(name.clone()), ..event(GroupAction::Renamed, actor, &[]) };
    Ok(decided(vec![GroupWrite::Rename(name)], &[e]))
}

/// `users` are registered and distinct; those already in (or joining) are left out.
pub(super) fn add(members: &[GroupMember], actor: u64, users: &[u64], max: usize) -> ServiceResult<Decision> {
    if role_of(members, actor)? == Role::Member {
        return Err(not_allowed("only the owner or an admin may add members"));
    }
    let new: Vec<u64> = users.iter().copied().filter(|u| !members.iter().any(|m| m.user_id == *u)).collect();
    if new.is_empty() {
        return Ok(Decision::default());
    }
    if members.len() + new.len() > max {
        return Err(ServiceError::TooManyMembers { max });
    }
    Ok(decided(vec![GroupWrite::Add(new.clone())], &[event(GroupAction::Added, actor, &new)]))
}

/// The owner and admins remove others (an admin neither the owner nor another admin); a member
/// removing themselves leaves.
pub(super) fn remove(group: &Group, members: &[GroupMember], actor: u64, user: u64) -> ServiceResult<Decision> {
    let role = role_of(members, actor)?;
    if actor == user {
        return Ok(leave(group, members, actor));
    }
    match (role, row(members, user)?.role()) {
        (Role::Owner, _) | (Role::Admin, Role::Member) => {}
        (Role::Admin, _) => return Err(not_allowed("an admin may not remove the owner or another admin")),
        (Role::Member, _) => return Err(not_allowed("only the owner or an admin may remove members")),
    }
    Ok(decided(vec![GroupWrite::Remove(user)], &[event(GroupAction::Removed, actor, &[user])]))
}

/// `actor` leaves: an owner first hands the group to the longest-standing admin, else the
/// longest-standing member; the last member dissolves it.
fn leave(group: &Group, members: &[GroupMember], actor: u64) -> Decision {
    let others: Vec<&GroupMember> = members.iter().filter(|m| m.user_id != actor).collect();
    if others.is_empty() {
        return dissolved(members, actor);
    }
    let left = event(GroupAction::Left, actor, &[actor]);
    if group.owner != actor {
        return decided(vec![GroupWrite::Remove(actor)], &[left]);
    }
    let heir = others
        .iter()
        .filter(|m| m.is_active())
        .find(|m| m.role() == Role::Admin)
        .or_else(|| others.iter().find(|m| m.is_active()))
        .or(others.first())
        .map_or(actor, |m| m.user_id);
    decided(
        vec![GroupWrite::SetOwner(heir), GroupWrite::Remove(actor)],
        &[left, event(GroupAction::OwnerChanged, actor, &[heir])],
    )
}

pub(super) fn set_role(members: &[GroupMember], actor: u64, user: u64, role: Role) -> ServiceResult<Decision> {
    if role_of(members, actor)? != Role::Owner {
        return Err(not_allowed("only the owner may change roles"));
    }
    if role == Role::Owner {
        return Err(ServiceError::Validation {
            field: "role".into(),
            message: "must be admin or member; the owner hands the group over with POST /groups/{id}/owner".into(),
        });
    }
    let current = row(members, user)?.role();
    if current == Role::Owner {
        return Err(ServiceError::Validation {
            field: "user".into(),
            message: "the owner's role changes only with a hand-over".into(),
        });
    }
    if current == role {
        return Ok(Decision::default());
    }
    let e = GroupEvent { role: Some(role.as_str().into()), ..event(GroupAction::RoleChanged, actor, &[user]) };
    Ok(decided(vec![GroupWrite::SetRole(user, role)], &[e]))
}

pub(super) fn transfer(members: &[GroupMember], actor: u64, to: u64) -> ServiceResult<Decision> {
    if role_of(members, actor)? != Role::Owner {
        return Err(not_allowed("only the owner may hand the group over"));
    }
    if to == actor {
        return Ok(Decision::default());
    }
    role_of(members, to).map_err(|_| ServiceError::Validation {
        field: "user_id".into(),
        message: format!("user {to} is not a member of this group"),
    })?;
    Ok(decided(vec![GroupWrite::SetOwner(to)], &[event(GroupAction::OwnerChanged, actor, &[to])]))
}

pub(super) fn dissolve(members: &[GroupMember], actor: u64) -> ServiceResult<Decision> {
    if role_of(members, actor)? != Role::Owner {
        return Err(not_allowed("only the owner may dissolve the group"));
    }
    Ok(dissolved(members, actor))
}

/// The group is dissolved; its event names every member, so that each hears of it (the group
/// has no members left to push to once it is recorded).
fn dissolved(members: &[GroupMember], actor: u64) -> Decision {
    let everyone: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    decided(vec![GroupWrite::Dissolve], &[event(GroupAction::Dissolved, actor, &everyone)])
}
