//! One-to-one chat: connections, sending, the no-reply limit, history and unread.

use std::sync::Arc;

use bson::{DateTime, oid::ObjectId};
use chat_dao::{Admission, DaoGroup, MessageDao, PresenceDao, UserDao};
use chat_model::{ChatMessage, MessageDoc, ReplyCode, ServerFrame, Settings, config::ChatSettings, conversation_id};
use slog::{Logger, debug, o, warn};
use tokio::sync::{mpsc, watch};

use crate::{
    commit::{self, Committer, Stored},
    error::{ServiceError, ServiceResult},
    heartbeat::Heartbeat,
    hub::{Hub, Kick, Outbound},
    limits::Limits,
    marker::{self, ReadMarks},
    metrics::Metrics,
    workers::Workers,
};

#[derive(Clone)]
pub struct ChatService {
    messages: MessageDao,
    users: UserDao,
    committer: Committer,
    presence: PresenceDao,
    hub: Arc<Hub>,
    marks: ReadMarks,
    limits: Limits,
    metrics: Metrics,
    settings: ChatSettings,
    presence_ttl_secs: u64,
    connections_per_user: u32,
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

/// A page of unread messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadPage {
    pub messages: Vec<ChatMessage>,
    /// More unread messages wait after these.
    pub more: bool,
}

/// A send queued for the store: see [`ChatService::submit`].
pub struct PendingSend {
    chat: ChatService,
    from: u64,
    to: u64,
    content_hash: u64,
    answer: tokio::sync::oneshot::Receiver<commit::Answer>,
}

impl PendingSend {
    /// Waits until the message is stored (or refused); the committer has already pushed it
    /// to the live connections of the conversation, in seq order.
    pub async fn finish(self) -> ServiceResult<SendOutcome> {
        let (result, resent) = match self.answer.await {
            // the committer stopped while it held the send
            Err(_) => (Err(ServiceError::OutcomeUnknown), false),
            Ok(Err(e)) => (Err(e), false),
            Ok(Ok(Stored::New(doc, delivered))) => {
                debug!(self.chat.log, "sent"; "from" => self.from, "to" => self.to, "seq" => doc.seq, "delivered" => delivered);
                (Ok(SendOutcome { message: ChatMessage::from(&doc), delivered }), false)
            }
            Ok(Ok(Stored::Existing(first))) => (replay(&first, self.to as i64, self.content_hash), true),
        };
        self.chat.count_send(result.as_ref().err(), resent);
        result
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

/// The presence entry of a connection of this process.
pub(crate) fn presence_id(node: &str, conn_id: u64) -> String {
    format!("{node}:{conn_id}")
}

impl ChatService {
    /// Starts the committers, the read marks and the heartbeat as supervised workers.
    pub(crate) fn new(
        daos: &DaoGroup,
        settings: &Settings,
        hub: Arc<Hub>,
        limits: Limits,
        workers: &Workers,
        metrics: Metrics,
        log: &Logger,
    ) -> Self {
        let log = log.new(o!("service" => "chat"));
        let committer = Committer::start(
            commit::Deps {
                messages: daos.message.clone(),
                conversations: daos.conversation.clone(),
                hub: hub.clone(),
                settings: settings.chat.clone(),
                metrics: metrics.clone(),
                log: log.new(o!("task" => "commit")),
            },
            workers,
        );
        let (marks, marks_rx) = ReadMarks::new();
        let marks_rx = Arc::new(tokio::sync::Mutex::new(marks_rx));
        let (messages, retention, m, marks_log) =
            (daos.message.clone(), settings.chat.retention_secs, metrics.clone(), log.new(o!("task" => "read-marks")));
        workers.spawn("read-marks", move |stop| {
            marker::run(marks_rx.clone(), messages.clone(), retention, m.clone(), marks_log.clone(), stop)
        });
        let node: Arc<str> = ObjectId::new().to_hex().into();
        let heartbeat = Heartbeat {
            hub: hub.clone(),
            presence: daos.presence.clone(),
            sessions: daos.session.clone(),
            users: daos.user.clone(),
            node: node.clone(),
            interval: std::time::Duration::from_secs(settings.websocket.ping_interval_secs.max(1)),
            presence_ttl_secs: settings.websocket.presence_ttl_secs,
            log: log.new(o!("task" => "heartbeat")),
        };
        workers.spawn("heartbeat", move |stop| heartbeat.clone().run(stop));
        ChatService {
            messages: daos.message.clone(),
            users: daos.user.clone(),
            committer,
            presence: daos.presence.clone(),
            hub,
            marks,
            limits,
            metrics,
            settings: settings.chat.clone(),
            presence_ttl_secs: settings.websocket.presence_ttl_secs,
            connections_per_user: settings.limits.connections_per_user,
            node,
            log,
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Opens a connection: the peer must be another registered user, and the user may not
    /// already hold `connections_per_user` live ones; registers it for pushes and marks the
    /// user present. A presence store that does not answer does not keep anyone out (the
    /// heartbeat records them once it answers again).
    pub async fn connect(&self, user: u64, peer: u64, session: Arc<str>) -> ServiceResult<Connection> {
        if self.hub.is_closing() {
            return Err(ServiceError::ShuttingDown);
        }
        if peer == user {
            return Err(ServiceError::SelfChat);
        }
        self.users.find_by_id(peer).await?.ok_or(ServiceError::UserNotFound)?;
        let reg = self.hub.register(user, peer, session.clone(), self.settings.outbound_queue);
        let presence_id = presence_id(&self.node, reg.conn_id);
        let max = self.connections_per_user.max(1);
        match self.presence.admit(user, &presence_id, self.presence_ttl_secs, max).await {
            Ok(Admission::Admitted) => {}
            Ok(Admission::Full) => {
                self.hub.unregister(user, peer, reg.conn_id);
                self.metrics.throttle("connections");
                return Err(ServiceError::TooManyConnections { max });
            }
            Err(e) => warn!(self.log, "presence not recorded; the heartbeat will"; "user_id" => user, "error" => %e),
        }
        Ok(Connection { user, peer, conn_id: reg.conn_id, session, presence_id, outbound: reg.rx, kick: reg.kick })
    }

    /// Closes a connection's registration and presence. What was queued for it and never
    /// written stays unread.
    pub async fn disconnect(&self, conn: &mut Connection) {
        self.hub.unregister(conn.user, conn.peer, conn.conn_id);
        conn.outbound.close();
        if let Err(e) = self.presence.remove(conn.user, &conn.presence_id).await {
            // the entry lapses by itself after its ttl
            warn!(self.log, "presence not removed"; "user_id" => conn.user, "error" => %e);
        }
    }

    /// A frame was written to its connection: the message it hands over is marked read.
    pub fn written(&self, frame: &Outbound) {
        if let Some(id) = frame.delivers {
            self.marks.written(id);
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
    /// MongoDB, as durably as the write concern asks, before this returns Ok), then pushes it
    /// to the peer's and the sender's other live connections of the conversation.
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

    /// The first half of [`Self::send`]: checks the rules and the sender's rate, and queues the
    /// message for the store. A connection may submit its next message before this one is
    /// stored (its sends are stored in the order they were submitted); [`PendingSend::finish`]
    /// waits for the store.
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
        let queued = self.check_content(&content).and_then(|()| self.limits.send(from)).and_then(|()| {
            let (from_i, to_i) = (to_i64(from)?, to_i64(to)?);
            let content_hash = hash(&content);
            let answer = self.committer.submit(from_i, to_i, content, client_msg_id, conn_id)?;
            Ok(PendingSend { chat: self.clone(), from, to, content_hash, answer })
        });
        if let Err(e) = &queued {
            self.count_send(Some(e), false);
        }
        queued
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

    /// The oldest unread messages of the conversation, both sides' (as the demo did: the
    /// user's own show what the peer has not read yet), with seq above `after` (a connection
    /// passes the last seq it was given, so the next page needs no wait for the marks), at
    /// most `unread_max`. Nothing is marked read here: [`Self::written_unread`] does, once they
    /// were written, for those sent to the user.
    pub async fn unread(&self, user: u64, peer: u64, after: Option<i64>) -> ServiceResult<UnreadPage> {
        let max = self.settings.unread_max.max(1) as usize;
        let conv = conversation_id(user, peer);
        let users = [to_i64(user)?, to_i64(peer)?];
        let mut docs = self.messages.unread_for(&users, &conv, after.unwrap_or(0), max as i64 + 1).await?;
        let more = docs.len() > max;
        docs.truncate(max);
        Ok(UnreadPage { messages: docs.iter().map(ChatMessage::from).collect(), more })
    }

    /// An unread page was written to `user`'s connection: its messages are marked read (by the
    /// read marks, like pushes, a moment after the write).
    pub fn written_unread(&self, user: u64, messages: &[ChatMessage]) {
        for id in messages.iter().filter(|m| m.to == user).filter_map(|m| m.id.parse::<ObjectId>().ok()) {
            self.marks.written(id);
        }
    }

    /// How many messages a conversation holds (benchmarks and tests).
    pub async fn count(&self, a: u64, b: u64) -> ServiceResult<u64> {
        Ok(self.messages.count(&conversation_id(a, b)).await?)
    }

    /// Starts the shutdown: new sends are refused, every connection is told to close (each
    /// first writes the replies to the sends it has in flight).
    pub fn begin_shutdown(&self) -> usize {
        self.committer.close();
        self.hub.close()
    }

    pub fn is_closing(&self) -> bool {
        self.hub.is_closing()
    }

    /// Counts a send's answer in `chat_sends_total{outcome}`.
    fn count_send(&self, error: Option<&ServiceError>, resent: bool) {
        let outcome = match error {
            None if resent => "resent",
            None => "stored",
            Some(ServiceError::NoReplyLimit { .. }) => "no_reply_limit",
            Some(ServiceError::RateLimited { .. }) => "rate_limited",
            Some(ServiceError::Busy) => "busy",
            Some(ServiceError::ShuttingDown) => "shutting_down",
            Some(ServiceError::EmptyContent | ServiceError::ContentTooLarge { .. }) => "invalid",
            Some(ServiceError::ClientMsgIdReused(_) | ServiceError::ClientMsgIdConflict(_)) => "client_msg_id_conflict",
            Some(e) if e.unavailable_store().is_some() => "store_unavailable",
            Some(_) => "internal",
        };
        self.metrics.send(outcome);
    }
}

/// A content's fingerprint, to tell a resend from another message under the same id.
fn hash(content: &str) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut h);
    h.finish()
}

/// The first reply to a message sent again with the same client_msg_id: the same conversation
/// and content, else a conflict. "Delivered" when the peer's connection has had it.
fn replay(first: &MessageDoc, to: i64, content_hash: u64) -> ServiceResult<SendOutcome> {
    let cmid = || first.client_msg_id.clone().unwrap_or_default();
    if first.to != to {
        return Err(ServiceError::ClientMsgIdReused(cmid()));
    }
    if hash(&first.content) != content_hash {
        return Err(ServiceError::ClientMsgIdConflict(cmid()));
    }
    Ok(SendOutcome { message: ChatMessage::from(first), delivered: first.read })
}

/// A user id as MongoDB stores it; one beyond i64 cannot be a user.
pub(crate) fn to_i64(id: u64) -> ServiceResult<i64> {
    i64::try_from(id).map_err(|_| ServiceError::UserNotFound)
}
