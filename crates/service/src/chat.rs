//! One-to-one chat: connections, sending, the no-reply limit, history and unread.

use std::sync::Arc;

use bson::{DateTime, oid::ObjectId};
use chat_dao::{DaoGroup, MessageDao, PresenceDao, SessionDao, UserDao};
use chat_model::{ChatMessage, MessageDoc, ReplyCode, ServerFrame, Settings, config::ChatSettings, conversation_id};
use slog::{Logger, debug, o, warn};
use tokio::sync::{mpsc, watch};

use crate::{
    commit::{Committer, Stored},
    error::{ServiceError, ServiceResult},
    hub::{Hub, Kick, Outbound},
};

#[derive(Clone)]
pub struct ChatService {
    messages: MessageDao,
    users: UserDao,
    committer: Committer,
    sessions: SessionDao,
    presence: PresenceDao,
    hub: Arc<Hub>,
    settings: ChatSettings,
    presence_ttl_secs: u64,
    node: Arc<str>,
    log: Logger,
}

/// The result of a send that was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub message: ChatMessage,
    /// A live connection of the peer was handed the message (50004); else it waits unread (50005).
    pub delivered: bool,
}

impl SendOutcome {
    pub fn frame(&self) -> ServerFrame {
        let (code, text) = if self.delivered {
            (ReplyCode::Delivered, "delivered: the peer is online")
        } else {
            (ReplyCode::StoredOffline, "stored: the peer is offline and will get it as unread")
        };
        ServerFrame::new(code, text).with_message(self.message.clone())
    }
}

/// A send queued for the store: see [`ChatService::submit`].
pub struct PendingSend {
    chat: ChatService,
    from: u64,
    to: u64,
    answer: tokio::sync::oneshot::Receiver<ServiceResult<Stored>>,
}

impl PendingSend {
    /// Waits until the message is stored (or refused); the committer has already pushed it
    /// to the live connections of the conversation, in seq order.
    pub async fn finish(self) -> ServiceResult<SendOutcome> {
        let stored = self.answer.await.map_err(|_| ServiceError::Internal("the committer dropped a send".into()))??;
        match stored {
            Stored::New(doc, delivered) => Ok(self.chat.settle(self.from, self.to, doc, delivered).await),
            Stored::Existing(first) => replay(&first, self.to as i64),
        }
    }
}

/// A live WebSocket connection of `user` in the conversation with `peer`.
pub struct Connection {
    pub user: u64,
    pub peer: u64,
    pub conn_id: u64,
    /// The login session it was opened with (the token's hash).
    pub session: Arc<str>,
    /// The id under which presence lists this connection: `<node>:<conn_id>`.
    pub presence_id: String,
    /// Frames pushed to this connection.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Set when the server wants the connection closed.
    pub kick: watch::Receiver<Option<Kick>>,
}

/// `secs` after `t`: when a message stored or read at `t` expires.
pub(crate) fn expiry(t: DateTime, secs: u64) -> DateTime {
    let ms = i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
    DateTime::from_millis(t.timestamp_millis().saturating_add(ms))
}

impl ChatService {
    /// Starts the committer on the current tokio runtime.
    pub fn new(daos: &DaoGroup, settings: &Settings, hub: Arc<Hub>, log: &Logger) -> Self {
        let log = log.new(o!("service" => "chat"));
        let committer = Committer::start(
            daos.message.clone(),
            daos.conversation.clone(),
            daos.limit.clone(),
            hub.clone(),
            settings.chat.clone(),
            log.new(o!("task" => "commit")),
        );
        ChatService {
            messages: daos.message.clone(),
            users: daos.user.clone(),
            committer,
            sessions: daos.session.clone(),
            presence: daos.presence.clone(),
            hub,
            settings: settings.chat.clone(),
            presence_ttl_secs: settings.websocket.presence_ttl_secs,
            node: ObjectId::new().to_hex().into(),
            log,
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Opens a connection: the peer must be another registered user; registers it for pushes
    /// and marks the user present.
    pub async fn connect(&self, user: u64, peer: u64, session: Arc<str>) -> ServiceResult<Connection> {
        if peer == user {
            return Err(ServiceError::SelfChat);
        }
        self.users.find_by_id(peer).await?.ok_or(ServiceError::UserNotFound)?;
        let reg = self.hub.register(user, peer, session.clone(), self.settings.outbound_queue);
        let presence_id = format!("{}:{}", self.node, reg.conn_id);
        if let Err(e) = self.presence.refresh(user, &presence_id, self.presence_ttl_secs).await {
            self.hub.unregister(user, peer, reg.conn_id);
            return Err(e.into());
        }
        Ok(Connection { user, peer, conn_id: reg.conn_id, session, presence_id, outbound: reg.rx, kick: reg.kick })
    }

    /// At every ping: keeps the connection's presence alive, and tells whether its session
    /// still exists (false once it was logged out, on any node, or expired).
    pub async fn heartbeat(&self, conn: &Connection) -> ServiceResult<bool> {
        self.presence.refresh(conn.user, &conn.presence_id, self.presence_ttl_secs).await?;
        Ok(self.sessions.user_of(&conn.session).await?.is_some())
    }

    /// Closes a connection's registration and presence. Messages queued for it but never
    /// written go back to unread, so the peer finds them later.
    /// `unwritten` is a frame taken from the queue whose write failed.
    pub async fn disconnect(&self, conn: &mut Connection, unwritten: Option<Outbound>) {
        self.hub.unregister(conn.user, conn.peer, conn.conn_id);
        conn.outbound.close();
        let mut undelivered: Vec<ObjectId> = unwritten.and_then(|f| f.delivers).into_iter().collect();
        while let Ok(frame) = conn.outbound.try_recv() {
            undelivered.extend(frame.delivers);
        }
        if let Err(e) = self.messages.mark_undelivered(&undelivered).await {
            warn!(self.log, "unwritten messages not set back to unread"; "user_id" => conn.user, "count" => undelivered.len(), "error" => %e);
        }
        if let Err(e) = self.presence.remove(conn.user, &conn.presence_id).await {
            // the entry lapses by itself after its ttl
            warn!(self.log, "presence not removed"; "user_id" => conn.user, "error" => %e);
        }
    }

    /// Whether the user has a live connection on any node.
    pub async fn is_online(&self, user: u64) -> ServiceResult<bool> {
        Ok(self.presence.live_connections(user).await? > 0)
    }

    /// Checks a send's content against the rules.
    pub fn check_content(&self, content: &str) -> ServiceResult<()> {
        if content.trim().is_empty() {
            return Err(ServiceError::EmptyContent);
        }
        if content.len() > self.settings.max_content_bytes {
            return Err(ServiceError::ContentTooLarge { len: content.len(), max: self.settings.max_content_bytes });
        }
        Ok(())
    }

    /// Sends `content` from `from` to `to`: checks the rules, stores the message (it is in
    /// MongoDB before this returns Ok), then pushes it to the peer's and the sender's other
    /// live connections of the conversation.
    ///
    /// `conn_id` is the sending connection (it gets the reply, not a push).
    pub async fn send(
        &self,
        from: u64,
        to: u64,
        content: String,
        client_msg_id: Option<String>,
        conn_id: Option<u64>,
    ) -> ServiceResult<SendOutcome> {
        self.submit(from, to, content, client_msg_id, conn_id)?.finish().await
    }

    /// The first half of [`Self::send`]: checks the rules and queues the message for the store.
    /// A connection may submit its next message before this one is stored (its sends are
    /// stored in the order they were submitted); [`PendingSend::finish`] waits for the store.
    ///
    /// A resend of a stored message is recognised by the committer (the unique index on
    /// (from, client_msg_id)), which answers with the message stored first.
    pub fn submit(
        &self,
        from: u64,
        to: u64,
        content: String,
        client_msg_id: Option<String>,
        conn_id: Option<u64>,
    ) -> ServiceResult<PendingSend> {
        self.check_content(&content)?;
        let (from_i, to_i) = (to_i64(from)?, to_i64(to)?);
        let answer = self.committer.submit(from_i, to_i, content, client_msg_id, conn_id)?;
        Ok(PendingSend { chat: self.clone(), from, to, answer })
    }

    /// Makes the stored read flag say what happened: the peer connected or left between the
    /// committer's check and its push.
    ///
    /// Only ever towards unread: a message stored unread whose push found a connection stays
    /// unread (that connection may end before writing it, and its own correction would race
    /// with ours); at worst the recipient sees it live and again among the unread, which
    /// clients merge by seq.
    async fn settle(&self, from: u64, to: u64, doc: MessageDoc, delivered: bool) -> SendOutcome {
        let mut message = ChatMessage::from(&doc);
        if doc.delivered && !delivered {
            match self.messages.mark_undelivered(&[doc.id]).await {
                Ok(()) => message.read = false,
                // still stored and in the history; only its read flag is off
                Err(e) => warn!(self.log, "read flag not corrected"; "id" => %doc.id, "error" => %e),
            }
        }
        debug!(self.log, "sent"; "from" => from, "to" => to, "seq" => doc.seq, "delivered" => delivered);
        SendOutcome { message, delivered }
    }

    /// A page of the conversation, newest first: seq below `before_seq`, or the newest.
    pub async fn history(
        &self,
        user: u64,
        peer: u64,
        before_seq: Option<i64>,
        limit: Option<i64>,
    ) -> ServiceResult<Vec<ChatMessage>> {
        let max = i64::from(self.settings.history_max_limit.max(1));
        let limit = limit.unwrap_or(i64::from(self.settings.history_default_limit)).clamp(1, max);
        let docs = self.messages.history(&conversation_id(user, peer), before_seq, limit).await?;
        Ok(docs.iter().map(ChatMessage::from).collect())
    }

    /// Every unread message of the conversation (both directions), oldest first. Those sent to
    /// `user` are then marked read, and kept for the retention period from now.
    pub async fn unread(&self, user: u64, peer: u64) -> ServiceResult<Vec<ChatMessage>> {
        let user_i = to_i64(user)?;
        let docs = self.messages.unread(&conversation_id(user, peer)).await?;
        let mine: Vec<ObjectId> = docs.iter().filter(|d| d.to == user_i).map(|d| d.id).collect();
        self.messages.mark_read(&mine, user_i, expiry(DateTime::now(), self.settings.retention_secs)).await?;
        Ok(docs
            .iter()
            .map(|d| {
                let mut m = ChatMessage::from(d);
                m.read = m.read || d.to == user_i;
                m
            })
            .collect())
    }

    /// Puts back to unread the messages of an unread list that never reached the user.
    pub async fn restore_unread(&self, user: u64, messages: &[ChatMessage]) {
        let ids: Vec<ObjectId> = messages.iter().filter(|m| m.to == user).filter_map(|m| m.id.parse().ok()).collect();
        if let Err(e) = self.messages.mark_undelivered(&ids).await {
            warn!(self.log, "unread list not restored"; "user_id" => user, "count" => ids.len(), "error" => %e);
        }
    }

    /// How many messages a conversation holds (benchmarks and tests).
    pub async fn count(&self, a: u64, b: u64) -> ServiceResult<u64> {
        Ok(self.messages.count(&conversation_id(a, b)).await?)
    }
}

/// The first reply to a message sent again with the same client_msg_id.
fn replay(first: &MessageDoc, to: i64) -> ServiceResult<SendOutcome> {
    match (first.to == to, &first.client_msg_id) {
        (true, _) => Ok(SendOutcome { message: ChatMessage::from(first), delivered: first.delivered }),
        (false, cmid) => Err(ServiceError::ClientMsgIdReused(cmid.clone().unwrap_or_default())),
    }
}

/// A user id as MongoDB stores it; one beyond i64 cannot be a user.
pub(crate) fn to_i64(id: u64) -> ServiceResult<i64> {
    i64::try_from(id).map_err(|_| ServiceError::UserNotFound)
}
