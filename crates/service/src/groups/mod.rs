//! Groups: who is in them and who may change that. The groups and their members are in MySQL
//! ([`GroupDao`]); every change is decided by [`rules`] on the group as it is, with its row
//! locked, and written in one transaction with the events it causes (the outbox,
//! `group_events`). Each event is then recorded as a system message in the group's timeline
//! (seq'd like any message, pushed to the members and to whom it is about) — at once, and, when
//! that fails, by the `group-events` worker — idempotently (its `client_msg_id` is
//! `evt:<event id>`), in order per group. A change invalidates the group in the membership
//! cache ([`cache`]) that the push path, the sends and the reads use.
//!
//! New members are pending until the event that lets them in is recorded; they join at its seq
//! (the first message they see). A member taken out is out as soon as the transaction commits:
//! their pushes stop at once, and they are told by the event (which names them).
//!
//! Rules: the creator is the owner; the owner and admins rename the group and add members; the
//! owner and admins remove members, but an admin removes neither the owner nor another admin;
//! anyone may leave; the owner alone changes roles, hands the group over and dissolves it. An
//! owner who leaves hands it to the longest-standing admin, else the longest-standing member;
//! the last member to leave dissolves it.

pub mod cache;
mod rules;
mod text;
mod view;

use std::collections::HashSet;

use chat_dao::{
    ConversationDao, DaoGroup, GroupDao, UserDao,
    group::{Changed, Decision},
};
use chat_model::{
    GroupAction, GroupEvent, User,
    config::GroupSettings,
    group::{Group, GroupEventRow, GroupMember, GroupView, Role},
};
use slog::{Logger, o, warn};

pub use cache::{GroupCache, Membership};

use crate::{
    chat::ChatService,
    error::{ServiceError, ServiceResult},
    limits::Limits,
    workers::Stop,
};

/// Longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 30;

/// Events the worker records per round.
const EVENTS_PER_ROUND: i64 = 200;

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
        self.known_users(&others).await?;
        let event = GroupEvent {
            action: GroupAction::Created,
            actor: actor as i64,
            users: others.iter().map(|&u| u as i64).collect(),
            name: Some(name.clone()),
            role: None,
        };
        let json = serde_json::to_string(&event).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (id, _) = self.dao.create(&name, actor, &others, &json).await?;
        self.settle(id).await;
        self.view(actor, id, false).await
    }

    /// The groups `actor` is a member of, the newest first.
    pub async fn list(&self, actor: u64) -> ServiceResult<Vec<GroupView>> {
        self.limits.read(actor)?;
        let rows = self.dao.groups_of(actor).await?;
        let ids: Vec<u64> = rows.iter().map(|(g, _)| g.id).collect();
        let counts: std::collections::HashMap<u64, i64> = self.dao.member_counts(&ids).await?.into_iter().collect();
        Ok(rows
            .iter()
            .filter(|(_, me)| me.is_active())
            .map(|(g, me)| view::summary(g, me, counts.get(&g.id).copied().unwrap_or(0) as usize))
            .collect())
    }

    /// The group with its members and their read positions: members only.
    pub async fn get(&self, actor: u64, id: u64) -> ServiceResult<GroupView> {
        self.limits.read(actor)?;
        let group = self.cache.get(id).await?;
        group.member(actor).ok_or(ServiceError::NotMember)?;
        self.view(actor, id, true).await
    }

    /// Renames the group (the owner and admins).
    pub async fn rename(&self, actor: u64, id: u64, name: &str) -> ServiceResult<GroupView> {
        let name = check_name(name)?;
        self.change(actor, id, move |_, members| rules::rename(members, actor, name)).await?;
        self.view(actor, id, false).await
    }

    /// Adds members (the owner and admins); those already in are left as they are. Each new
    /// member sees the timeline from the "added" message.
    pub async fn add(&self, actor: u64, id: u64, users: &[u64]) -> ServiceResult<GroupView> {
        let users = distinct(users.iter().copied());
        self.known_users(&users).await?;
        let max = self.settings.max_members;
        self.change(actor, id, move |_, members| rules::add(members, actor, &users, max)).await?;
        self.view(actor, id, false).await
    }

    /// Removes `user` from the group: the owner and admins remove others (an admin neither the
    /// owner nor another admin); a member removing themselves leaves. Their pushes stop at once.
    /// Returns the group as the actor sees it, None when the actor left.
    pub async fn remove(&self, actor: u64, id: u64, user: u64) -> ServiceResult<Option<GroupView>> {
        self.change(actor, id, move |group, members| rules::remove(group, members, actor, user)).await?;
        if actor == user {
            // left (or dissolved it, as its last member)
            return Ok(None);
        }
        self.view(actor, id, false).await.map(Some)
    }

    /// Makes a member an admin or a plain member (the owner alone).
    pub async fn set_role(&self, actor: u64, id: u64, user: u64, role: Role) -> ServiceResult<GroupView> {
        self.change(actor, id, move |_, members| rules::set_role(members, actor, user, role)).await?;
        self.view(actor, id, false).await
    }

    /// Hands the group to another member (the owner alone); the previous owner becomes an admin.
    pub async fn transfer(&self, actor: u64, id: u64, to: u64) -> ServiceResult<GroupView> {
        self.change(actor, id, move |_, members| rules::transfer(members, actor, to)).await?;
        self.view(actor, id, false).await
    }

    /// Dissolves the group (the owner alone): the members hear of it, then it is gone.
    pub async fn dissolve(&self, actor: u64, id: u64) -> ServiceResult<()> {
        self.change(actor, id, move |_, members| rules::dissolve(members, actor)).await
    }

    /// Runs a rule on the group as it is and writes what it decided with its events (see the
    /// module's notes), then records the events.
    async fn change(
        &self,
        actor: u64,
        id: u64,
        rule: impl FnOnce(&Group, &[GroupMember]) -> ServiceResult<Decision> + Send + 'static,
    ) -> ServiceResult<()> {
        self.limits.read(actor)?;
        match self.dao.change(id, actor, rule).await? {
            Changed::NoGroup => Err(ServiceError::GroupNotFound),
            Changed::Refused(e) => Err(e),
            Changed::Done(events) => {
                if !events.is_empty() {
                    self.chat.group_changed(id).await;
                    self.settle(id).await;
                }
                Ok(())
            }
        }
    }

    /// Records the group's pending events now, in order; what fails is left to the worker (the
    /// change itself is written: the request succeeded).
    async fn settle(&self, id: u64) {
        if let Err(e) = self.record_pending(Some(id)).await {
            warn!(self.log, "a group's event is not recorded yet; the worker will"; "group_id" => id, "error" => %e);
        }
    }

    /// Records pending events (of one group, or of all), the oldest first; a group whose event
    /// fails has its later ones wait for the next round.
    async fn record_pending(&self, group: Option<u64>) -> ServiceResult<usize> {
        let events = self.dao.pending_events(group, EVENTS_PER_ROUND).await?;
        let mut failed: HashSet<u64> = HashSet::new();
        let mut first_error = None;
        let mut recorded = 0;
        for row in events {
            if failed.contains(&row.group_id) {
                continue;
            }
            match self.record(&row).await {
                Ok(()) => recorded += 1,
                Err(e) => {
                    failed.insert(row.group_id);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if recorded == 0 => Err(e),
            _ => Ok(recorded),
        }
    }

    /// Records one event as a system message (again, harmlessly, if it was recorded before its
    /// row was marked), marks it with its seq, lets in the members it adds.
    async fn record(&self, row: &GroupEventRow) -> ServiceResult<()> {
        let event: GroupEvent = serde_json::from_str(&row.event)
            .map_err(|e| ServiceError::Internal(format!("group event {}: {e}", row.id)))?;
        let mut named: Vec<u64> = event.users.iter().filter_map(|&u| u64::try_from(u).ok()).collect();
        named.push(row.actor);
        let names = self.users.find_by_ids(&named).await?;
        let content = text::describe(&event, &names);
        let joined: Vec<u64> = match event.action {
            GroupAction::Created => named.clone(),
            GroupAction::Added => named[..named.len() - 1].to_vec(),
            _ => Vec::new(),
        };
        let cmid = format!("evt:{}", row.id);
        // loaded here, not in the committer (which then finds it in memory)
        let _ = self.cache.get(row.group_id).await;
        let seq = self.chat.record_change(row.actor, row.group_id, content, event, cmid).await?;
        self.dao.mark_recorded(row.id, row.group_id, seq, &joined).await?;
        self.chat.group_changed(row.group_id).await;
        Ok(())
    }

    /// The worker: records what the requests could not, every second, until `stop`.
    pub(crate) async fn run_events(self, stop: Stop) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.record_pending(None).await {
                        warn!(self.log, "group events not recorded; trying again"; "error" => %e);
                    }
                }
            }
        }
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
