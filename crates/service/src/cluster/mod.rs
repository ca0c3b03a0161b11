//! Delivery across the nodes of one service. A push names users and the conversation it is
//! about; [`Delivery`] hands it to this node's connections ([`Hub`]) and publishes it, through
//! Redis, to each other node that holds a connection of one of those users (from the presence
//! entries, which count only under a live lease), one message per node per batch, in order.
//! [`listen`] is the other side: each node's listener, which hands what it hears to its hub.
//!
//! Pub/sub is at most once. What is lost between nodes is a frame, never state: a message is
//! stored before it is pushed and becomes read only by what a connection wrote or a receipt, so
//! a lost push leaves it unread, and a client that sees a gap in a conversation's seqs catches
//! up. Each connection writes a conversation's messages in increasing seq (a late one is left
//! out), so nothing reaches one connection twice.

pub(crate) mod listen;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chat_dao::{BusDao, PresenceDao};
use chat_model::{NodeEvent, NodeMessage, NodePush, NodeRecipient, Target};
use slog::{Logger, warn};

use crate::{hub::Hub, metrics::Metrics};

/// Pushes per message to a node: a batch's pushes are split so that no one message grows large.
const PUSHES_PER_MESSAGE: usize = 64;
/// After a route lookup or a publish failed, pushes stay on this node for this long (a slow or
/// absent Redis must not slow every commit).
const ROUTES_BACKOFF: Duration = Duration::from_secs(1);

/// One frame for the connections of some users, wherever they are connected.
#[derive(Debug, Clone)]
pub(crate) struct Push {
    pub text: Arc<str>,
    /// The conversation and seq of the message it carries, if it carries one.
    pub seq: Option<(Arc<str>, i64)>,
    pub to: Vec<Audience>,
}

/// Users who get a push alike.
#[derive(Debug, Clone)]
pub(crate) struct Audience {
    pub users: Vec<u64>,
    /// The conversation as these users see it; None: device connections only.
    pub about: Option<Target>,
    /// The message is to them: a connection pinned to the conversation counts it read once
    /// written.
    pub reads: bool,
    /// Whether one of them taking it makes the push delivered (the sender's own do not).
    pub counts: bool,
    /// A connection of this node to leave out (the one that sent).
    pub skip: Option<u64>,
}

impl Audience {
    pub(crate) fn of(users: Vec<u64>, about: Option<Target>) -> Self {
        Audience { users, about, reads: false, counts: true, skip: None }
    }
}

impl Push {
    pub(crate) fn event(text: impl Into<Arc<str>>, to: Vec<Audience>) -> Self {
        Push { text: text.into(), seq: None, to }
    }
}

/// What the listener and the readiness check share.
#[derive(Default)]
pub(crate) struct BusState {
    /// The listening connection is subscribed.
    pub listening: AtomicBool,
    /// Fault injection: frames pushed from other nodes are dropped on arrival.
    pub dropping: AtomicBool,
    /// Until when route lookups are skipped (the last lookup or publish failed).
    routes_down_until: Mutex<Option<Instant>>,
}

#[derive(Clone)]
pub(crate) struct Delivery {
    pub hub: Arc<Hub>,
    pub presence: PresenceDao,
    pub bus: BusDao,
    pub state: Arc<BusState>,
    pub metrics: Metrics,
    pub log: Logger,
}

impl Delivery {
    fn node(&self) -> &str {
        self.presence.node()
    }

    /// Pushes each frame to its audiences' connections here and on the other nodes, in order;
    /// for each, whether a counting user took it (a connection here queued it, or a node holding
    /// one of theirs heard it).
    pub(crate) async fn push(&self, pushes: &[Push]) -> Vec<bool> {
        let mut delivered: Vec<bool> = pushes.iter().map(|p| self.push_here(p)).collect();
        let users: Vec<u64> = {
            let set: HashSet<u64> =
                pushes.iter().flat_map(|p| p.to.iter()).flat_map(|a| a.users.iter().copied()).collect();
            set.into_iter().collect()
        };
        let Some(routes) = self.routes(&users).await else { return delivered };
        // per node, in order: the pushes it is to hand over (to the users it holds), and which
        // of them it makes delivered
        let mut per_node: BTreeMap<&str, Vec<(usize, NodePush, bool)>> = BTreeMap::new();
        for (i, p) in pushes.iter().enumerate() {
            let mut here: BTreeMap<&str, (Vec<NodeRecipient>, bool)> = BTreeMap::new();
            for a in &p.to {
                let mut by_node: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
                for u in &a.users {
                    for n in routes.get(u).into_iter().flatten() {
                        by_node.entry(n.as_str()).or_default().push(*u);
                    }
                }
                for (n, users) in by_node {
                    let e = here.entry(n).or_default();
                    e.0.push(NodeRecipient { users, about: a.about, reads: a.reads });
                    e.1 |= a.counts;
                }
            }
            for (n, (to, counts)) in here {
                let push =
                    NodePush { text: p.text.to_string(), seq: p.seq.as_ref().map(|(c, s)| (c.to_string(), *s)), to };
                per_node.entry(n).or_default().push((i, push, counts));
            }
        }
        let mut messages: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut counted: Vec<Vec<usize>> = Vec::new();
        for (n, items) in per_node {
            for chunk in items.chunks(PUSHES_PER_MESSAGE) {
                let event = NodeEvent::Push { pushes: chunk.iter().map(|(_, p, _)| p.clone()).collect() };
                let Ok(payload) = serde_json::to_vec(&self.message(event)) else { continue };
                messages.push((n, payload));
                counted.push(chunk.iter().filter(|(_, _, c)| *c).map(|(i, _, _)| *i).collect());
            }
        }
        match self.bus.publish(&messages).await {
            Ok(heard) => {
                for (n, idx) in heard.iter().zip(counted) {
                    if *n > 0 {
                        for i in idx {
                            delivered[i] = true;
                        }
                    }
                }
                let unheard = heard.iter().filter(|n| **n == 0).count() as u64;
                self.metrics.node_event("published", heard.len() as u64 - unheard);
                self.metrics.node_event("unheard", unheard);
            }
            Err(e) => {
                warn!(self.log, "pushes to other nodes not published; their messages wait unread"; "error" => %e);
                self.back_off();
            }
        }
        delivered
    }

    /// The other nodes each user has live connections on; None when they cannot be looked up
    /// (then nothing goes to other nodes, for [`ROUTES_BACKOFF`]).
    async fn routes(&self, users: &[u64]) -> Option<HashMap<u64, Vec<String>>> {
        if users.is_empty() {
            return None;
        }
        {
            let mut down = self.state.routes_down_until.lock().unwrap_or_else(|p| p.into_inner());
            match *down {
                Some(until) if Instant::now() < until => return None,
                Some(_) => *down = None,
                None => {}
            }
        }
        match self.presence.routes(users).await {
            Ok(routes) => Some(
                users
                    .iter()
                    .zip(routes)
                    .filter_map(|(u, nodes)| {
                        let nodes: Vec<String> = nodes.into_iter().filter(|n| n != self.node()).collect();
                        (!nodes.is_empty()).then_some((*u, nodes))
                    })
                    .collect(),
            ),
            Err(e) => {
                warn!(self.log, "routes to other nodes not looked up; pushes stay on this node for a while"; "error" => %e);
                self.back_off();
                None
            }
        }
    }

    /// Pushes stay on this node for [`ROUTES_BACKOFF`] (Redis failed a lookup or a publish).
    fn back_off(&self) {
        *self.state.routes_down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + ROUTES_BACKOFF);
    }

    /// Hands a push to this node's connections; whether a counting user took it.
    fn push_here(&self, p: &Push) -> bool {
        let mut took = false;
        for a in &p.to {
            took |= self.hub.push_audience(a.users.iter().copied(), a.about, a.reads, &p.text, p.seq.as_ref(), a.skip)
                && a.counts;
        }
        took
    }

    fn message(&self, event: NodeEvent) -> NodeMessage {
        NodeMessage { from: self.node().to_string(), event }
    }

    /// Tells the other nodes of something that may concern any of them (the caller has done
    /// its part here).
    pub(crate) async fn broadcast(&self, event: NodeEvent) {
        broadcast(&self.bus, &self.message(event), &self.log).await;
    }

    /// Ends a login session's connections: here at once, and on the other nodes. How many
    /// closed here.
    pub(crate) async fn end_session(&self, session: &str) -> usize {
        let closed = self.hub.kick_session(session);
        self.broadcast(NodeEvent::SessionEnded { session: session.to_string() }).await;
        closed
    }

    /// Fault injection for tests: while on, frames pushed from other nodes are dropped.
    pub(crate) fn drop_incoming(&self, on: bool) {
        self.state.dropping.store(on, Ordering::SeqCst);
    }

    /// Whether the listener is subscribed (what `/readyz` reports).
    pub(crate) fn is_listening(&self) -> bool {
        self.state.listening.load(Ordering::SeqCst)
    }
}

/// Publishes `message` to every node, best effort (pub/sub is at most once; what must not be
/// lost is in the stores): the one encoding of a broadcast, for the nodes and the admin commands.
pub(crate) async fn broadcast(bus: &BusDao, message: &NodeMessage, log: &Logger) {
    let Ok(payload) = serde_json::to_vec(message) else { return };
    if let Err(e) = bus.broadcast(&payload).await {
        warn!(log, "event not told to the other nodes"; "error" => %e);
    }
}
