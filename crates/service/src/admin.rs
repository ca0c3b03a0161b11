//! What an operator does to accounts and conversations from the command line
//! (`chat-server admin …`): disable, enable and delete users, list and end their sessions, and
//! a conversation's figures. It works on the stores directly and starts no workers, so it runs
//! beside live nodes; what they must act on at once (a session's connections to close) is told
//! them over the nodes' broadcast channel, as a logout on a node is.

use chat_dao::{BusDao, ConversationDao, DaoGroup, GroupDao, MessageDao, SessionDao, UserDao};
use chat_model::{
    NodeEvent, NodeMessage, User,
    message::{conversation_id, group_conversation_id},
    user::{STATUS_ACTIVE, STATUS_DISABLED},
};
use chrono::NaiveDateTime;
use slog::{Logger, info, o};

use crate::error::{ServiceError, ServiceResult};

/// The account was changed, and then ending its sessions failed: say both.
fn partly(done: &str, e: ServiceError) -> ServiceError {
    ServiceError::Internal(format!(
        "the account is {done}, but ending its sessions failed ({e}); run the command again"
    ))
}

#[derive(Clone)]
pub struct AdminService {
    users: UserDao,
    sessions: SessionDao,
    bus: BusDao,
    messages: MessageDao,
    conversations: ConversationDao,
    groups: GroupDao,
    /// The `from` of what this process broadcasts: never a node's name, so every node acts.
    origin: String,
    log: Logger,
}

/// One live login session. `id` is the start of the token's SHA-256 (the token itself is
/// never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Hex digits of a session's hash that name it to an operator.
pub const SESSION_ID_LEN: usize = 16;

/// What a change to an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub user_id: u64,
    /// False when the account already was as asked (nothing changed).
    pub changed: bool,
    pub sessions_ended: usize,
}

/// One member's place in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStats {
    pub user_id: u64,
    pub user_name: String,
    pub read_seq: i64,
    /// Messages after `read_seq` that others sent.
    pub unread: u64,
}

/// A conversation's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationStats {
    pub conv: String,
    /// The group's name, for a group.
    pub group_name: Option<String>,
    /// Messages stored now (expired ones are gone).
    pub messages: u64,
    pub last_seq: i64,
    pub members: Vec<MemberStats>,
}

impl AdminService {
    pub fn new(daos: &DaoGroup, log: &Logger) -> Self {
        AdminService {
            users: daos.user.clone(),
            sessions: daos.session.clone(),
            bus: daos.bus.clone(),
            messages: daos.message.clone(),
            conversations: daos.conversation.clone(),
            groups: daos.group.clone(),
            origin: format!("admin:{}", std::process::id()),
            log: log.new(o!("service" => "admin")),
        }
    }

    async fn user(&self, name: &str) -> ServiceResult<User> {
        self.users.find_by_name(name.trim()).await?.ok_or(ServiceError::UserNotFound)
    }

    /// Disables an account: it cannot log in, and its sessions end at once (their connections
    /// close on every node).
    pub async fn disable(&self, name: &str) -> ServiceResult<AccountChange> {
        let user = self.user(name).await?;
        let changed = user.status != STATUS_DISABLED && self.users.set_status(user.id, STATUS_DISABLED).await?;
        let sessions_ended = self.end_all(user.id).await.map_err(|e| partly("disabled", e))?;
        info!(self.log, "user disabled"; "user_id" => user.id, "sessions_ended" => sessions_ended);
        Ok(AccountChange { user_id: user.id, changed, sessions_ended })
    }

    /// Enables a disabled account again. It logs in anew: sessions left from before (a login
    /// that raced the disabling) are ended first, so none comes back to life.
    pub async fn enable(&self, name: &str) -> ServiceResult<AccountChange> {
        let user = self.user(name).await?;
        if user.status == STATUS_ACTIVE {
            return Ok(AccountChange { user_id: user.id, changed: false, sessions_ended: 0 });
        }
        let sessions_ended = self.end_all(user.id).await?;
        let changed = self.users.set_status(user.id, STATUS_ACTIVE).await?;
        info!(self.log, "user enabled"; "user_id" => user.id);
        Ok(AccountChange { user_id: user.id, changed, sessions_ended })
    }

    /// Deletes an account softly (`deleted_at`; the name stays taken) and ends its sessions.
    pub async fn delete(&self, name: &str) -> ServiceResult<AccountChange> {
        let user = self.user(name).await?;
        let changed = self.users.soft_delete(user.id, STATUS_DISABLED).await?;
        let sessions_ended = self.end_all(user.id).await.map_err(|e| partly("deleted", e))?;
        info!(self.log, "user deleted"; "user_id" => user.id, "sessions_ended" => sessions_ended);
        Ok(AccountChange { user_id: user.id, changed, sessions_ended })
    }

    /// A user's live sessions, the newest first.
    pub async fn sessions(&self, name: &str) -> ServiceResult<Vec<SessionInfo>> {
        let user = self.user(name).await?;
        Ok(self
            .sessions
            .list_for(user.id)
            .await?
            .into_iter()
            .map(|s| SessionInfo {
                id: s.token_hash.chars().take(SESSION_ID_LEN).collect(),
                created_at: s.created_at,
                expires_at: s.expires_at,
            })
            .collect())
    }

    /// Ends a user's sessions: the one whose id starts with `id`, or all of them. How many.
    pub async fn end_sessions(&self, name: &str, id: Option<&str>) -> ServiceResult<usize> {
        let user = self.user(name).await?;
        let Some(id) = id else { return self.end_all(user.id).await };
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 8 {
            return Err(ServiceError::Validation {
                field: "session".into(),
                message: "give at least 8 hex digits of the session's id".into(),
            });
        }
        let matching: Vec<String> = self
            .sessions
            .list_for(user.id)
            .await?
            .into_iter()
            .map(|s| s.token_hash)
            .filter(|h| h.starts_with(&id))
            .collect();
        match matching.as_slice() {
            [] => {
                Err(ServiceError::Validation { field: "session".into(), message: "no live session has that id".into() })
            }
            [one] => {
                self.end(one).await?;
                Ok(1)
            }
            _ => Err(ServiceError::Validation {
                field: "session".into(),
                message: "several sessions match; give more of the id".into(),
            }),
        }
    }

    async fn end_all(&self, user: u64) -> ServiceResult<usize> {
        // (a session ended before a failure stays ended: running the command again ends the rest)
        let sessions = self.sessions.list_for(user).await?;
        for s in &sessions {
            self.end(&s.token_hash).await?;
        }
        Ok(sessions.len())
    }

    /// Deletes a session (MySQL and its cache) and tells every node to close its connections.
    /// The broadcast is best effort: a node that misses it closes them at its next heartbeat
    /// (the session is gone from the stores, and so is the account's right to connect).
    async fn end(&self, token_hash: &str) -> ServiceResult<()> {
        self.sessions.delete(token_hash).await?;
        let message = NodeMessage {
            from: self.origin.clone(),
            event: NodeEvent::SessionEnded { session: token_hash.to_string() },
        };
        crate::cluster::broadcast(&self.bus, &message, &self.log).await;
        Ok(())
    }

    /// The figures of the direct conversation of two users.
    pub async fn direct_stats(&self, a: &str, b: &str) -> ServiceResult<ConversationStats> {
        let (a, b) = (self.user(a).await?, self.user(b).await?);
        let conv = conversation_id(a.id, b.id);
        self.stats(conv, None, vec![(a.id, a.user_name), (b.id, b.user_name)]).await
    }

    /// The figures of a group's conversation.
    pub async fn group_stats(&self, group: u64) -> ServiceResult<ConversationStats> {
        let (g, members) = self.groups.load(group).await?.ok_or(ServiceError::GroupNotFound)?;
        let ids: Vec<u64> = members.iter().map(|m| m.user_id).collect();
        let users = self.users.find_by_ids(&ids).await?;
        let named = ids
            .iter()
            .map(|id| {
                let name = users.iter().find(|u| u.id == *id).map(|u| u.user_name.clone()).unwrap_or_default();
                (*id, name)
            })
            .collect();
        self.stats(group_conversation_id(group), Some(g.name), named).await
    }

    async fn stats(
        &self,
        conv: String,
        group_name: Option<String>,
        members: Vec<(u64, String)>,
    ) -> ServiceResult<ConversationStats> {
        let messages = self.messages.count(&conv).await?;
        let (last_seq, read) = self.conversations.read_state(&conv).await?;
        let mut out = Vec::with_capacity(members.len());
        for (user_id, user_name) in members {
            let id = i64::try_from(user_id).unwrap_or(i64::MAX);
            let read_seq = read.get(&id).copied().unwrap_or(0);
            let counts = self.messages.others_counts_after(id, &[(conv.clone(), read_seq)]).await?;
            out.push(MemberStats { user_id, user_name, read_seq, unread: counts.get(&conv).copied().unwrap_or(0) });
        }
        Ok(ConversationStats { conv, group_name, messages, last_seq, members: out })
    }
}
