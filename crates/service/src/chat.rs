//! Chat in direct conversations and groups: connections, sending, the no-reply limit,
//! what a member may see. Reading pages (history, unread, catch-up) are in `reading`; read
//! receipts, typing and presence in `events`; the groups themselves (who is in them) in
//! [`crate::groups`].

use std::sync::Arc;

use bson::{DateTime, oid::ObjectId};
use chat_dao::{Admission, ConversationDao, DaoGroup, MessageDao, PresenceDao, UserDao};
use chat_model::{
    ChatMessage, GroupEvent, MessageDoc, ReplyCode, ServerFrame, Settings, Target,
    config::{ChatSettings, GroupSettings},
};
use slog::{Logger, debug, o, warn};
use tokio::sync::{mpsc, watch};

use crate::{
    cluster::{Delivery, listen::Listener},
    commit::{self, Committer, Stored},
    error::{ServiceError, ServiceResult},
    groups::GroupCache,
    heartbeat::Heartbeat,
    hub::{Hub, Kick, Outbound},
    limits::Limits,
    metrics::Metrics,
    reads::{self, ReadMarks, Reads},
    workers::Workers,
};

#[derive(Clone)]
pub struct ChatService {
    pub(crate) messages: MessageDao,
    pub(crate) conversations: ConversationDao,
    pub(crate) users: UserDao,
    committer: Committer,
    pub(crate) presence: PresenceDao,
    pub(crate) hub: Arc<Hub>,
    pub(crate) delivery: Delivery,
    pub(crate) marks: ReadMarks,
    pub(crate) reads: Reads,
    pub(crate) limits: Limits,
    pub(crate) groups: GroupCache,
    pub(crate) group_settings: GroupSettings,
    metrics: Metrics,
    pub(crate) settings: ChatSettings,
    presence_ttl_secs: u64,
    connections_per_user: u32,
    node: Arc<str>,
    pub(crate) log: Logger,
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
        let group = self.message.group_id.is_some();
        let (code, text) = match (self.delivered, group) {
            (true, false) => (ReplyCode::Delivered, "delivered: the peer is online"),
            (false, false) => (ReplyCode::StoredOffline, "stored: the peer is offline and will get it as unread"),
            (true, true) => (ReplyCode::Delivered, "delivered: members are online"),
            (false, true) => {
                (ReplyCode::StoredOffline, "stored: no other member is online; they will get it as unread")
            }
        };
        ServerFrame::new(code, text).with_message(self.message.clone())
    }
}

/// A send queued for the store: see [`ChatService::submit`].
pub struct PendingSend {
    chat: ChatService,
    from: u64,
    target: Target,
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
                debug!(self.chat.log, "sent"; "from" => self.from, "conv" => &doc.conv, "seq" => doc.seq, "delivered" => delivered);
                (Ok(SendOutcome { message: ChatMessage::from(&doc), delivered }), false)
            }
            Ok(Ok(Stored::Existing(first))) => (replay(&first, &self.target.conv(self.from), self.content_hash), true),
        };
        self.chat.count_send(result.as_ref().err(), resent);
        result
    }
}

/// A live WebSocket connection of `user`: a device connection, or pinned to one conversation.
pub struct Connection {
    pub user: u64,
    /// The one conversation it carries (`?toUid=`, `?groupId=`); None: all of them.
    pub pin: Option<Target>,
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

/// The node's name in its lease: the configured one, else the host's.
fn node_label(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "node".into())
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
        // this life of the process: its presence entries are `<node>:<conn>`, under its lease
        let node: Arc<str> = ObjectId::new().to_hex().into();
        let presence = daos.presence.for_node(node.clone());
        let delivery = Delivery {
            hub: hub.clone(),
            presence: presence.clone(),
            bus: daos.bus.clone(),
            state: Arc::default(),
            metrics: metrics.clone(),
            log: log.new(o!("task" => "delivery")),
        };
        let (marks, marks_rx) = ReadMarks::new(&metrics);
        let marks_rx = Arc::new(tokio::sync::Mutex::new(marks_rx));
        let read_reads = Reads {
            conversations: daos.conversation.clone(),
            messages: daos.message.clone(),
            delivery: delivery.clone(),
            retention_secs: settings.chat.retention_secs,
            log: log.new(o!("task" => "read-marks")),
        };
        let (worker_reads, m) = (read_reads.clone(), metrics.clone());
        let delay = std::time::Duration::from_millis(settings.chat.read_mark_delay_ms);
        workers.spawn("read-marks", move |stop| {
            reads::run(marks_rx.clone(), worker_reads.clone(), delay, m.clone(), stop)
        });
        let groups =
            GroupCache::new(daos.group.clone(), std::time::Duration::from_secs(settings.group.cache_ttl_secs.max(1)));
        let hints = commit::SeqHints::default();
        let listener = Listener {
            delivery: delivery.clone(),
            groups: groups.clone(),
            hints: hints.clone(),
            log: log.new(o!("task" => "listener")),
        };
        workers.spawn("listener", move |stop| listener.clone().run(stop));
        let committer = Committer::start(
            commit::Deps {
                messages: daos.message.clone(),
                conversations: daos.conversation.clone(),
                delivery: delivery.clone(),
                groups: groups.clone(),
                marks: marks.clone(),
                hints,
                settings: settings.chat.clone(),
                metrics: metrics.clone(),
                log: log.new(o!("task" => "commit")),
            },
            workers,
        );
        let lease = crate::heartbeat::Lease {
            presence: presence.clone(),
            label: node_label(&settings.cluster.node_id),
            ttl: std::time::Duration::from_secs(settings.cluster.lease_ttl_secs.max(1)),
            log: log.new(o!("task" => "lease")),
        };
        workers.spawn("lease", move |stop| lease.clone().run(stop));
        let heartbeat = Heartbeat {
            hub: hub.clone(),
            presence: presence.clone(),
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
            conversations: daos.conversation.clone(),
            users: daos.user.clone(),
            committer,
            presence,
            hub,
            delivery,
            marks,
            reads: read_reads,
            limits,
            groups,
            group_settings: settings.group.clone(),
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

    /// Whether this node hears the others (its pub/sub subscription is up): without it, pushes
    /// from other nodes do not reach its connections.
    pub fn hears_other_nodes(&self) -> bool {
        self.delivery.is_listening()
    }

    /// Fault injection, for tests and drills: while on, the frames other nodes push to this
    /// node's connections are dropped on arrival (as pub/sub may lose them); what they carried
    /// stays unread, for the clients to catch up on.
    pub fn drop_pushes_from_other_nodes(&self, on: bool) {
        self.delivery.drop_incoming(on);
    }

    /// A group's members changed: forgotten by this node's cache at once, and by the others'.
    pub(crate) async fn group_changed(&self, group: u64) {
        self.groups.invalidate(group);
        self.delivery.broadcast(chat_model::NodeEvent::GroupChanged { group }).await;
    }

    /// Opens a connection: a device connection (`pin` None), or one pinned to a conversation
    /// (with another registered user, or of a group the user is a member of). The user may not already
    /// hold `connections_per_user` live ones. Registers it for pushes and marks the user
    /// present; the user's first connection tells the peers they came online. A presence store
    /// that does not answer does not keep anyone out (the heartbeat records them once it
    /// answers again).
    pub async fn connect(&self, user: u64, pin: Option<Target>, session: Arc<str>) -> ServiceResult<Connection> {
        if self.hub.is_closing() {
            return Err(ServiceError::ShuttingDown);
        }
        if let Some(target) = pin {
            self.check_target(user, target).await?;
        }
        let reg = self.hub.register(user, pin, session.clone(), self.settings.outbound_queue);
        let presence_id = presence_id(&self.node, reg.conn_id);
        let max = self.connections_per_user.max(1);
        match self.presence.admit(user, &presence_id, self.presence_ttl_secs, max).await {
            Ok(Admission::Admitted { first }) => {
                if first {
                    self.announce(user, true);
                }
            }
            Ok(Admission::Full) => {
                self.hub.unregister(user, reg.conn_id);
                self.metrics.throttle("connections");
                return Err(ServiceError::TooManyConnections { max });
            }
            Err(e) => warn!(self.log, "presence not recorded; the heartbeat will"; "user_id" => user, "error" => %e),
        }
        Ok(Connection { user, pin, conn_id: reg.conn_id, session, presence_id, outbound: reg.rx, kick: reg.kick })
    }

    /// The peer of a conversation of `user`: another registered user.
    pub async fn check_peer(&self, user: u64, peer: u64) -> ServiceResult<()> {
        if peer == user {
            return Err(ServiceError::SelfChat);
        }
        self.users.find_by_id(peer).await?.ok_or(ServiceError::UserNotFound)?;
        Ok(())
    }

    /// That `user` may use the conversation: a peer who is another registered user, or a group
    /// the user is a member of.
    pub async fn check_target(&self, user: u64, target: Target) -> ServiceResult<()> {
        match target {
            Target::User(peer) => self.check_peer(user, peer).await,
            Target::Group(_) => self.visible_after(user, target).await.map(|_| ()),
        }
    }

    /// The seq after which `user` sees the conversation: 0 in a direct one; in a group, the seq
    /// before their joining (the system message of it is the first they see), or 0 when
    /// `group.history_for_new_members` is on. Not a member: [`ServiceError::NotMember`]; no
    /// such group: [`ServiceError::GroupNotFound`].
    pub(crate) async fn visible_after(&self, user: u64, target: Target) -> ServiceResult<i64> {
        let Target::Group(g) = target else { return Ok(0) };
        let group = self.groups.get(g).await?;
        let member = group.member(user).ok_or(ServiceError::NotMember)?;
        Ok(member.sees_after(self.group_settings.history_for_new_members))
    }

    /// Closes a connection's registration and presence; the user's last connection tells the
    /// peers they went offline. What was queued for it and never written stays unread.
    pub async fn disconnect(&self, conn: &mut Connection) {
        self.hub.unregister(conn.user, conn.conn_id);
        conn.outbound.close();
        match self.presence.remove(conn.user, &conn.presence_id).await {
            Ok(0) => self.announce(conn.user, false),
            Ok(_) => {}
            // the entry lapses by itself after its ttl
            Err(e) => warn!(self.log, "presence not removed"; "user_id" => conn.user, "error" => %e),
        }
    }

    /// A frame was written to `conn`: on a connection pinned to the conversation (it is on
    /// screen) the message it hands over counts as read.
    pub fn written(&self, conn: &Connection, frame: &Outbound) {
        if conn.pin.is_some()
            && let Some(mark) = &frame.delivers
        {
            self.marks.mark(mark.clone());
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

    /// Sends `content` from `from` into the conversation: checks the rules, stores the message
    /// (it is in MongoDB, as durably as the write concern asks, before this returns Ok), then
    /// pushes it to the peer's (or the group members') and the sender's other live connections
    /// of the conversation.
    ///
    /// `conn_id` is the sending connection (it gets the reply, not a push).
    pub async fn send(
        &self,
        from: u64,
        target: Target,
        content: String,
        client_msg_id: Option<String>,
        conn_id: Option<u64>,
    ) -> ServiceResult<SendOutcome> {
        self.submit(from, target, content, client_msg_id, conn_id)?.finish().await
    }

    /// Stores a group's system message from `actor` (the change `event` records), pushed to the
    /// members and to the users the change is about; `client_msg_id` names the event, so that
    /// recording it again stores nothing. Returns its seq.
    pub(crate) async fn record_change(
        &self,
        actor: u64,
        group: u64,
        content: String,
        event: GroupEvent,
        client_msg_id: String,
    ) -> ServiceResult<i64> {
        let target = Target::Group(group);
        let answer = self.committer.submit(to_i64(actor)?, target, Some(event), content, Some(client_msg_id), None)?;
        match answer.await {
            Err(_) => Err(ServiceError::OutcomeUnknown),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Stored::New(doc, _) | Stored::Existing(doc))) => Ok(doc.seq),
        }
    }

    /// The first half of [`Self::send`]: checks the rules and the sender's rate, and queues the
    /// message for the store. A connection may submit its next message before this one is
    /// stored (its sends are stored in the order they were submitted); [`PendingSend::finish`]
    /// waits for the store.
    ///
    /// A resend of a stored message is recognised by the committer (the unique index on
    /// (from, client_msg_id)), which answers with the message stored first. In a group, the
    /// committer checks that the sender is a member when it stores the message.
    pub fn submit(
        &self,
        from: u64,
        target: Target,
        content: String,
        client_msg_id: Option<String>,
        conn_id: Option<u64>,
    ) -> ServiceResult<PendingSend> {
        let queued = self.check_content(&content).and_then(|()| self.limits.send(from)).and_then(|()| {
            let from_i = to_i64(from)?;
            if let Target::User(to) = target {
                to_i64(to)?;
            }
            let content_hash = hash(&content);
            let answer = self.committer.submit(from_i, target, None, content, client_msg_id, conn_id)?;
            Ok(PendingSend { chat: self.clone(), from, target, content_hash, answer })
        });
        if let Err(e) = &queued {
            self.count_send(Some(e), false);
        }
        queued
    }

    /// How many messages a conversation holds (benchmarks and tests).
    pub async fn count(&self, a: u64, b: u64) -> ServiceResult<u64> {
        Ok(self.messages.count(&chat_model::conversation_id(a, b)).await?)
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
            Some(ServiceError::NotMember | ServiceError::GroupNotFound) => "not_member",
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
fn replay(first: &MessageDoc, conv: &str, content_hash: u64) -> ServiceResult<SendOutcome> {
    let cmid = || first.client_msg_id.clone().unwrap_or_default();
    if first.conv != conv {
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
