//! The live connections of this process, by user: where pushes go.
//!
//! A connection is a device connection (it carries all of its user's conversations) or is
//! pinned to one conversation (the demo's `?toUid=` socket, or `?groupId=`): a push about a
//! conversation goes to the user's device connections and to those pinned to it. Each connection owns a bounded queue of outbound frames. A push never waits: a connection
//! whose queue is full is too slow to read and is told to close instead of growing memory.
//! Once the hub is closing (shutdown), every connection is told to close, and so is any that
//! registers afterwards.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use chat_model::Target;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{Notify, mpsc, watch};

use crate::reads::ReadMark;

/// A frame ready to write, shared by every connection it goes to.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub text: Arc<str>,
    /// The message this frame hands to its recipient, if it does: on a connection pinned to
    /// the conversation (it is on screen) it counts as read once written.
    pub delivers: Option<ReadMark>,
    /// The conversation and seq of the message it carries, if it carries one: a connection
    /// writes each conversation's messages in increasing seq and leaves out one that comes late
    /// (from another node, after a later one), which the client catches up on.
    pub seq: Option<(Arc<str>, i64)>,
}

impl Outbound {
    pub fn text(text: impl Into<Arc<str>>) -> Self {
        Outbound { text: text.into(), delivers: None, seq: None }
    }
}

/// Why the server closes a connection. Codes 4000–4999 are the application's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The session was logged out or expired.
    SessionEnded,
    /// The connection did not read its frames fast enough.
    TooSlow,
    /// The server is shutting down.
    ShuttingDown,
}

impl Kick {
    /// The WebSocket close code and reason.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Kick::SessionEnded => (4001, "session ended"),
            Kick::TooSlow => (4008, "too slow to read; reconnect"),
            Kick::ShuttingDown => (1001, "server shutting down"),
        }
    }
}

struct Entry {
    conn_id: u64,
    user: u64,
    /// The one conversation it is pinned to; None: a device connection.
    pin: Option<Target>,
    session: Arc<str>,
    tx: mpsc::Sender<Outbound>,
    kick: watch::Sender<Option<Kick>>,
}

impl Entry {
    fn kick(&self, why: Kick) {
        let _ = self.kick.send(Some(why));
    }

    /// Whether it carries the conversation.
    fn carries(&self, target: Target) -> bool {
        self.pin.is_none_or(|p| p == target)
    }
}

/// The registry of live connections.
#[derive(Default)]
pub struct Hub {
    conns: RwLock<HashMap<u64, Vec<Entry>>>,
    next_id: AtomicU64,
    closing: AtomicBool,
    count: Gauge,
    emptied: Notify,
}

/// One live connection, as the node's heartbeat sees it.
#[derive(Debug, Clone)]
pub struct LiveConn {
    pub user: u64,
    pub conn_id: u64,
    pub session: Arc<str>,
}

/// What a connection keeps of its registration.
pub struct Registration {
    pub conn_id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    pub kick: watch::Receiver<Option<Kick>>,
}

impl Hub {
    /// Counts its connections in `gauge` (the `chat_connections` metric).
    pub fn with_gauge(gauge: Gauge) -> Self {
        Hub { count: gauge, ..Hub::default() }
    }

    /// Adds a connection of `user`: a device connection (`pin` None) or one pinned to the
    /// conversation with `pin`.
    pub fn register(&self, user: u64, pin: Option<Target>, session: Arc<str>, queue: usize) -> Registration {
        let conn_id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (kick_tx, kick_rx) = watch::channel(None);
        let entry = Entry { conn_id, user, pin, session, tx, kick: kick_tx };
        {
            let mut map = self.write();
            // checked under the lock that `close` takes: no connection slips past a shutdown
            if self.closing.load(Ordering::SeqCst) {
                entry.kick(Kick::ShuttingDown);
            }
            map.entry(user).or_default().push(entry);
        }
        self.count.inc();
        Registration { conn_id, rx, kick: kick_rx }
    }

    /// Removes a connection; returns how many `user` still has here.
    pub fn unregister(&self, user: u64, conn_id: u64) -> usize {
        let mut map = self.write();
        let mut left = 0;
        if let Some(list) = map.get_mut(&user) {
            let before = list.len();
            list.retain(|e| e.conn_id != conn_id);
            if list.len() < before {
                self.count.dec();
            }
            left = list.len();
            if list.is_empty() {
                map.remove(&user);
            }
        }
        if map.is_empty() {
            self.emptied.notify_waiters();
        }
        left
    }

    /// How many connections are registered.
    pub fn len(&self) -> usize {
        self.read().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Every connection, for the heartbeat.
    pub fn snapshot(&self) -> Vec<LiveConn> {
        self.read()
            .values()
            .flatten()
            .map(|e| LiveConn { user: e.user, conn_id: e.conn_id, session: e.session.clone() })
            .collect()
    }

    /// Starts the shutdown: every connection, and any registered from now on, is told to close.
    pub fn close(&self) -> usize {
        let map = self.write();
        self.closing.store(true, Ordering::SeqCst);
        map.values().flatten().map(|e| e.kick(Kick::ShuttingDown)).count()
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Waits until every connection has unregistered, or `within` has passed; true if empty.
    pub async fn wait_empty(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut emptied = std::pin::pin!(self.emptied.notified());
            emptied.as_mut().enable();
            if self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, emptied).await.is_err() {
                return self.is_empty();
            }
        }
    }

    /// Queues a frame on the connections of each of `users` that carry the conversation `about`
    /// (as they see it; None: their device connections), but `skip`, under one lock. With
    /// `reads`, the frame hands each user the message `seq` names (a pinned connection counts it
    /// read once written). Whether any of them took it.
    pub fn push_audience(
        &self,
        users: impl IntoIterator<Item = u64>,
        about: Option<Target>,
        reads: bool,
        text: &Arc<str>,
        seq: Option<&(Arc<str>, i64)>,
        skip: Option<u64>,
    ) -> bool {
        let map = self.read();
        let mut took = false;
        for user in users {
            let Some(list) = map.get(&user) else { continue };
            let delivers = match (reads, about, seq) {
                (true, Some(with), Some((conv, seq))) => Some(ReadMark {
                    conv: conv.clone(),
                    reader: user as i64,
                    with,
                    seq: *seq,
                    seen: crate::reads::Seen::Pushed,
                }),
                _ => None,
            };
            let frame = Outbound { text: text.clone(), delivers, seq: seq.cloned() };
            let to = |e: &&Entry| Some(e.conn_id) != skip && about.map_or(e.pin.is_none(), |t| e.carries(t));
            for e in list.iter().filter(to) {
                took |= Self::offer(e, &frame);
            }
        }
        took
    }

    /// Queues a frame on one connection; true if it took it (a full queue kicks it as too slow).
    fn offer(e: &Entry, frame: &Outbound) -> bool {
        match e.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                e.kick(Kick::TooSlow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes every connection opened with the session (a logout).
    pub fn kick_session(&self, session: &str) -> usize {
        let map = self.read();
        map.values().flatten().filter(|e| &*e.session == session).map(|e| e.kick(Kick::SessionEnded)).count()
    }

    /// Closes every connection of a user (an account that may no longer be used).
    pub fn kick_user(&self, user: u64) -> usize {
        let map = self.read();
        map.values().flatten().filter(|e| e.user == user).map(|e| e.kick(Kick::SessionEnded)).count()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Vec<Entry>>> {
        self.conns.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Vec<Entry>>> {
        self.conns.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(hub: &Hub, users: &[u64], about: Option<Target>, text: &str, skip: Option<u64>) -> bool {
        hub.push_audience(users.iter().copied(), about, false, &Arc::from(text), None, skip)
    }

    #[tokio::test]
    async fn pushes_to_every_connection_that_carries_the_conversation() {
        let hub = Hub::default();
        let mut a = hub.register(1, Some(Target::User(2)), "s1".into(), 4);
        let mut b = hub.register(1, Some(Target::User(2)), "s2".into(), 4);
        let mut other = hub.register(1, Some(Target::User(3)), "s1".into(), 4);
        let mut device = hub.register(1, None, "s3".into(), 4);
        assert!(push(&hub, &[1], Some(Target::User(2)), "hello", None));
        assert_eq!(&*a.rx.recv().await.unwrap().text, "hello");
        assert_eq!(&*b.rx.recv().await.unwrap().text, "hello");
        assert_eq!(&*device.rx.recv().await.unwrap().text, "hello");
        assert!(other.rx.try_recv().is_err());
        assert!(push(&hub, &[1], Some(Target::User(2)), "again", Some(a.conn_id)));
        assert!(a.rx.try_recv().is_err(), "the skipped connection");
        assert_eq!(&*b.rx.recv().await.unwrap().text, "again");
        assert!(!push(&hub, &[2], Some(Target::User(1)), "nobody", None));
        assert!(push(&hub, &[1], None, "event", None));
        assert_eq!(&*device.rx.recv().await.unwrap().text, "again");
        assert_eq!(&*device.rx.recv().await.unwrap().text, "event", "events about no conversation: device connections");
        assert!(b.rx.try_recv().is_err());
        assert_eq!(hub.unregister(1, a.conn_id), 3);
    }

    #[tokio::test]
    async fn a_message_to_a_pinned_connection_carries_its_read_mark() {
        let hub = Hub::default();
        let mut pinned = hub.register(2, Some(Target::User(1)), "s".into(), 4);
        let seq = (Arc::<str>::from("1_2"), 7);
        assert!(hub.push_audience([2], Some(Target::User(1)), true, &Arc::from("m"), Some(&seq), None));
        let f = pinned.rx.recv().await.unwrap();
        assert_eq!(f.seq, Some(seq));
        let mark = f.delivers.unwrap();
        assert_eq!((mark.reader, mark.with, mark.seq, mark.seen), (2, Target::User(1), 7, crate::reads::Seen::Pushed));
    }

    #[tokio::test]
    async fn a_group_push_reaches_the_members_connections_that_carry_it() {
        let hub = Hub::default();
        let mut member = hub.register(2, Some(Target::Group(9)), "s2".into(), 4);
        let mut elsewhere = hub.register(3, Some(Target::Group(8)), "s3".into(), 4);
        assert!(push(&hub, &[2, 3, 4], Some(Target::Group(9)), "to the group", None));
        assert_eq!(&*member.rx.recv().await.unwrap().text, "to the group");
        assert!(elsewhere.rx.try_recv().is_err(), "pinned to another group");
    }

    #[tokio::test]
    async fn a_full_queue_kicks_the_slow_connection() {
        let hub = Hub::default();
        let mut slow = hub.register(1, Some(Target::User(2)), "s".into(), 2);
        assert!(push(&hub, &[1], Some(Target::User(2)), "x", None));
        assert!(push(&hub, &[1], Some(Target::User(2)), "x", None));
        assert!(!push(&hub, &[1], Some(Target::User(2)), "x", None));
        slow.kick.changed().await.unwrap();
        assert_eq!(*slow.kick.borrow(), Some(Kick::TooSlow));
    }

    #[tokio::test]
    async fn closing_kicks_every_connection_and_those_that_come_later() {
        let hub = Hub::default();
        let mut a = hub.register(1, Some(Target::User(2)), "s1".into(), 2);
        assert_eq!(hub.close(), 1);
        a.kick.changed().await.unwrap();
        assert_eq!(*a.kick.borrow(), Some(Kick::ShuttingDown));
        let late = hub.register(3, None, "s3".into(), 2);
        assert_eq!(*late.kick.borrow(), Some(Kick::ShuttingDown));
        assert_eq!(hub.len(), 2);
        assert!(!hub.wait_empty(Duration::from_millis(20)).await);
        hub.unregister(1, a.conn_id);
        hub.unregister(3, late.conn_id);
        assert!(hub.wait_empty(Duration::from_millis(20)).await);
    }

    #[tokio::test]
    async fn logout_kicks_only_that_session() {
        let hub = Hub::default();
        let mut a = hub.register(1, Some(Target::User(2)), "s1".into(), 2);
        let b = hub.register(1, None, "s2".into(), 2);
        assert_eq!(hub.kick_session("s1"), 1);
        a.kick.changed().await.unwrap();
        assert_eq!(*a.kick.borrow(), Some(Kick::SessionEnded));
        assert_eq!(*b.kick.borrow(), None);
    }
}
