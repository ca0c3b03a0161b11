//! Groups: who is in them and who may change that. The groups and their members are in MySQL
//! ([`GroupDao`]); each change is written there and recorded as a system message in the
//! group's timeline (seq'd like any message, pushed to the members and to whom it is about), and
//! invalidates the group in the membership cache ([`cache`]) that the push path, the sends and
//! the reads use.
//!
//! Rules: the creator is the owner; the owner and admins rename the group and add members; the
//! owner and admins remove members, but an admin removes neither the owner nor another admin;
//! anyone may leave; the owner alone changes roles, hands the group over and dissolves it. An
//! owner who leaves hands it to the longest-standing admin, else the longest-standing member;
//! the last member to leave dissolves it.
//!
//! Order of the writes: a change that lets someone in records its system message first and then
//! the membership with that message's seq as the join seq (the new member sees the timeline from
//! it); a change that takes someone out writes MySQL first (their pushes stop at once) and then
//! records it. A store that fails between the two leaves the membership as MySQL has it; the
//! request answers 503 and may be repeated.

pub mod cache;
mod text;
mod view;

use std::{collections::HashSet, sync::Arc};

use chat_dao::{ConversationDao, DaoGroup, GroupDao, UserDao};
use chat_model::{
    GroupAction, GroupEvent, User,
    config::GroupSettings,
    group::{GroupView, Role},
};
use slog::{Logger, o, warn};

pub use cache::{GroupCache, Membership};

use crate::{
    chat::{ChatService, to_i64},
    error::{ServiceError, ServiceResult},
    limits::Limits,
};

/// Longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 30;

#[derive(Clone)]
pub struct GroupService {
    dao: GroupDao,
    users: UserDao,
    conversations: ConversationDao,
    cache: GroupCache,
    chat: ChatService,
    limits: Limits,
    settings: GroupSettings,
    log: Logger,
}

impl GroupService {
    pub(crate) fn new(
        daos: &DaoGroup,
        chat: &ChatService,
        settings: &GroupSettings,
        limits: Limits,
        log: &Logger,
    ) -> Self {
        GroupService {
            dao: daos.group.clone(),
            users: daos.user.clone(),
            conversations: daos.conversation.clone(),
            cache: chat.groups.clone(),
            chat: chat.clone(),
            limits,
            settings: settings.clone(),
            log: log.new(o!("service" => "groups")),
        }
    }

    /// Creates a group owned by `actor` with `members`; its timeline begins with "created".
    pub async fn create(&self, actor: u64, name: &str, members: &[u64]) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        let name = check_name(name)?;
        let others = distinct(members.iter().copied().filter(|&u| u != actor));
        if others.len() + 1 > self.settings.max_members {
            return Err(ServiceError::TooManyMembers { max: self.settings.max_members });
        }
        let mut names = self.known_users(&others).await?;
        names.extend(self.known_users(&[actor]).await?);
        // the "created" message is the group's first: everyone joins at seq 1
        let id = self.dao.create(&name, actor, &others, 1).await?;
        self.cache.invalidate(id);
        let event = GroupEvent {
            action: GroupAction::Created,
            actor: to_i64(actor)?,
            users: ids(&others),
            name: Some(name.clone()),
            role: None,
        };
        if let Err(e) = self.chat.record_change(actor, id, text::describe(&event, &names), event).await {
            // nobody has heard of it: undone, so that a retry does not leave a second group
            if let Err(undo) = self.dao.dissolve(id).await {
                warn!(self.log, "a group whose first message failed was not undone"; "group_id" => id, "error" => %undo);
            }
            self.cache.invalidate(id);
            return Err(e);
        }
        self.view(actor, id).await
    }

    /// The groups `actor` is a member of, the newest first.
    pub async fn list(&self, actor: u64) -> ServiceResult<Vec<GroupView>> {
        self.limits.read(actor)?;
        let groups = self.dao.groups_of(actor).await?;
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            match self.cache.get(g.id).await {
                Ok(m) => out.extend(view::summary(&m, actor)),
                // dissolved meanwhile
                Err(ServiceError::GroupNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The group with its members and their read positions: members only.
    pub async fn get(&self, actor: u64, id: u64) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        self.member_of(actor, id).await?;
        self.view(actor, id).await
    }

    /// Renames the group (the owner and admins).
    pub async fn rename(&self, actor: u64, id: u64, name: &str) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        let (_, role) = self.member_of(actor, id).await?;
        if role == Role::Member {
            return Err(ServiceError::NotAllowed("only the owner or an admin may rename the group".into()));
        }
        let name = check_name(name)?;
        self.dao.rename(id, &name).await?;
        self.cache.invalidate(id);
        let event = GroupEvent {
            action: GroupAction::Renamed,
            actor: to_i64(actor)?,
            users: vec![],
            name: Some(name),
            role: None,
        };
        self.record(actor, id, event).await?;
        self.view(actor, id).await
    }

    /// Adds members (the owner and admins); those already in are left as they are. Each new
    /// member sees the timeline from the "added" message.
    pub async fn add(&self, actor: u64, id: u64, users: &[u64]) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        let (group, role) = self.member_of(actor, id).await?;
        if role == Role::Member {
            return Err(ServiceError::NotAllowed("only the owner or an admin may add members".into()));
        }
        let new = distinct(users.iter().copied().filter(|&u| !group.is_member(u)));
        if new.is_empty() {
            return self.view(actor, id).await;
        }
        if group.len() + new.len() > self.settings.max_members {
            return Err(ServiceError::TooManyMembers { max: self.settings.max_members });
        }
        self.known_users(&new).await?;
        let event =
            GroupEvent { action: GroupAction::Added, actor: to_i64(actor)?, users: ids(&new), name: None, role: None };
        let seq = self.record(actor, id, event).await?;
        self.dao.add_members(id, &new, seq).await?;
        self.cache.invalidate(id);
        self.view(actor, id).await
    }

    /// Removes `user` from the group: the owner and admins remove others (an admin neither the
    /// owner nor another admin); a member removing themselves leaves. Their pushes stop at once.
    /// Returns the group as the actor sees it, None when the actor left.
    pub async fn remove(&self, actor: u64, id: u64, user: u64) -> ServiceResult<Option<GroupView>> {
        self.limits.read(actor)?;
        let (group, role) = self.member_of(actor, id).await?;
        if actor == user {
            self.leave(&group, actor).await?;
            return Ok(None);
        }
        let target = group.member(user).ok_or_else(|| not_a_member(user))?.role();
        match (role, target) {
            (Role::Owner, _) => {}
            (Role::Admin, Role::Member) => {}
            (Role::Admin, _) => {
                return Err(ServiceError::NotAllowed("an admin may not remove the owner or another admin".into()));
            }
            (Role::Member, _) => {
                return Err(ServiceError::NotAllowed("only the owner or an admin may remove members".into()));
            }
        }
        self.dao.remove_member(id, user).await?;
        self.cache.invalidate(id);
        let event = GroupEvent {
            action: GroupAction::Removed,
            actor: to_i64(actor)?,
            users: vec![to_i64(user)?],
            name: None,
            role: None,
        };
        self.record(actor, id, event).await?;
        self.view(actor, id).await.map(Some)
    }

    /// `actor` leaves: an owner first hands the group to the longest-standing admin, else the
    /// longest-standing member; the last member dissolves it.
    async fn leave(&self, group: &Membership, actor: u64) -> ServiceResult<()> {
        let id = group.group.id;
        let others: Vec<_> = group.members.iter().filter(|m| m.user_id != actor).collect();
        if others.is_empty() {
            return self.dissolve_now(actor, id).await;
        }
        let heir = if group.group.owner == actor {
            let heir = others.iter().find(|m| m.role() == Role::Admin).or(others.first()).map(|m| m.user_id);
            if let Some(heir) = heir {
                self.dao.set_owner(id, heir).await?;
            }
            heir
        } else {
            None
        };
        self.dao.remove_member(id, actor).await?;
        self.cache.invalidate(id);
        let me = to_i64(actor)?;
        self.record(
            actor,
            id,
            GroupEvent { action: GroupAction::Left, actor: me, users: vec![me], name: None, role: None },
        )
        .await?;
        if let Some(heir) = heir {
            let event = GroupEvent {
                action: GroupAction::OwnerChanged,
                actor: me,
                users: vec![to_i64(heir)?],
                name: None,
                role: None,
            };
            self.record(actor, id, event).await?;
        }
        Ok(())
    }

    /// Makes a member an admin or a plain member (the owner alone).
    pub async fn set_role(&self, actor: u64, id: u64, user: u64, role: Role) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        let (group, my_role) = self.member_of(actor, id).await?;
        if my_role != Role::Owner {
            return Err(ServiceError::NotAllowed("only the owner may change roles".into()));
        }
        if role == Role::Owner {
            return Err(ServiceError::Validation {
                field: "role".into(),
                message: "must be admin or member; the owner hands the group over with POST /groups/{id}/owner".into(),
            });
        }
        let current = group.member(user).ok_or_else(|| not_a_member(user))?.role();
        if current == Role::Owner {
            return Err(ServiceError::Validation {
                field: "user".into(),
                message: "the owner's role changes only with a hand-over".into(),
            });
        }
        if current != role {
            self.dao.set_admin(id, user, role == Role::Admin).await?;
            self.cache.invalidate(id);
            let event = GroupEvent {
                action: GroupAction::RoleChanged,
                actor: to_i64(actor)?,
                users: vec![to_i64(user)?],
                name: None,
                role: Some(role.as_str().into()),
            };
            self.record(actor, id, event).await?;
        }
        self.view(actor, id).await
    }

    /// Hands the group to another member (the owner alone); the previous owner becomes an admin.
    pub async fn transfer(&self, actor: u64, id: u64, to: u64) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        let (group, my_role) = self.member_of(actor, id).await?;
        if my_role != Role::Owner {
            return Err(ServiceError::NotAllowed("only the owner may hand the group over".into()));
        }
        if to == actor {
            return self.view(actor, id).await;
        }
        group.member(to).ok_or_else(|| not_a_member(to))?;
        self.dao.set_owner(id, to).await?;
        self.cache.invalidate(id);
        let event = GroupEvent {
            action: GroupAction::OwnerChanged,
            actor: to_i64(actor)?,
            users: vec![to_i64(to)?],
            name: None,
            role: None,
        };
        self.record(actor, id, event).await?;
        self.view(actor, id).await
    }

    /// Dissolves the group (the owner alone): the members hear of it, then it is gone.
    pub async fn dissolve(&self, actor: u64, id: u64) -> ServiceResult<()> {
        self.limits.read(actor)?;
        let (_, role) = self.member_of(actor, id).await?;
        if role != Role::Owner {
            return Err(ServiceError::NotAllowed("only the owner may dissolve the group".into()));
        }
        self.dissolve_now(actor, id).await
    }

    async fn dissolve_now(&self, actor: u64, id: u64) -> ServiceResult<()> {
        let event =
            GroupEvent { action: GroupAction::Dissolved, actor: to_i64(actor)?, users: vec![], name: None, role: None };
        self.record(actor, id, event).await?;
        self.dao.dissolve(id).await?;
        self.cache.invalidate(id);
        Ok(())
    }

    /// Records a change as a system message; returns its seq.
    async fn record(&self, actor: u64, id: u64, event: GroupEvent) -> ServiceResult<i64> {
        let mut named: Vec<u64> = event.users.iter().filter_map(|&u| u64::try_from(u).ok()).collect();
        named.push(actor);
        let names = self.names(&named).await?;
        self.chat.record_change(actor, id, text::describe(&event, &names), event).await
    }

    /// The group and the actor's role in it: 404 when there is no such group, 403 when the
    /// actor is not a member.
    async fn member_of(&self, actor: u64, id: u64) -> ServiceResult<(Arc<Membership>, Role)> {
        let group = self.cache.get(id).await?;
        let role = group.member(actor).ok_or(ServiceError::NotMember)?.role();
        Ok((group, role))
    }

    /// The users of `ids`, all of which must be registered (else the unknown ones are named).
    async fn known_users(&self, ids: &[u64]) -> ServiceResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.users.find_by_ids(ids).await?;
        let known: HashSet<u64> = found.iter().map(|u| u.id).collect();
        let mut unknown: Vec<u64> = ids.iter().copied().filter(|u| !known.contains(u)).collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(ServiceError::UnknownUsers(unknown));
        }
        Ok(found)
    }

    async fn names(&self, ids: &[u64]) -> ServiceResult<Vec<User>> {
        Ok(self.users.find_by_ids(ids).await?)
    }
}

/// A group name: 1 to [`MAX_NAME_CHARS`] characters, not blank; stored trimmed.
fn check_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(ServiceError::Validation {
            field: "name".into(),
            message: format!("must be 1 to {MAX_NAME_CHARS} characters, not blank"),
        });
    }
    Ok(name.to_string())
}

fn distinct(users: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut seen = HashSet::new();
    users.filter(|u| seen.insert(*u)).collect()
}

fn ids(users: &[u64]) -> Vec<i64> {
    users.iter().filter_map(|&u| i64::try_from(u).ok()).collect()
}

fn not_a_member(user: u64) -> ServiceError {
    ServiceError::Validation { field: "user".into(), message: format!("user {user} is not a member of this group") }
}
