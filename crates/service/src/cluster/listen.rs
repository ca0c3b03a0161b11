//! A node's listener: one connection subscribed to the node's channel and to the one of all
//! nodes, handing what it hears to this node's connections, kicks and membership cache. It
//! pings its connection every second; one that breaks or stops answering is opened again
//! (after a short backoff), and until it is, `/readyz` says the node is not ready. Each time it
//! subscribes it forgets every cached group (their changes may have been missed meanwhile).

use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use chat_model::{NodeEvent, NodeMessage};
use slog::{Logger, info, warn};

use super::Delivery;
use crate::{commit::SeqHints, groups::GroupCache, workers::Stop};

const PING_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(crate) struct Listener {
    pub delivery: Delivery,
    pub groups: GroupCache,
    /// Where the seqs of the messages other nodes pushed go, for this node's committers.
    pub hints: SeqHints,
    pub log: Logger,
}

impl Listener {
    pub(crate) async fn run(self, stop: Stop) {
        let node = self.delivery.presence.node().to_string();
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        loop {
            let subscribed = tokio::select! {
                _ = stop.cancelled() => return,
                s = self.delivery.bus.subscribe(&node) => s,
            };
            let mut sub = match subscribed {
                Ok(s) => s,
                Err(e) => {
                    if !failing {
                        warn!(self.log, "not listening to the other nodes; trying again"; "error" => %e);
                        failing = true;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            failing = false;
            // what was cached before (at start-up too) may have missed changes told meanwhile
            self.groups.invalidate_all();
            self.delivery.state.listening.store(true, Ordering::SeqCst);
            info!(self.log, "listening to the other nodes");
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let why = loop {
                tokio::select! {
                    _ = stop.cancelled() => {
                        self.delivery.state.listening.store(false, Ordering::SeqCst);
                        return;
                    }
                    m = sub.next() => match m {
                        Some(payload) => self.handle(&node, &payload),
                        None => break "connection closed".to_string(),
                    },
                    _ = ping.tick() => if let Err(e) = sub.ping().await {
                        break e.to_string();
                    },
                }
            };
            self.delivery.state.listening.store(false, Ordering::SeqCst);
            warn!(self.log, "stopped listening to the other nodes; subscribing again"; "error" => why);
        }
    }

    fn handle(&self, node: &str, payload: &[u8]) {
        let metrics = &self.delivery.metrics;
        let msg: NodeMessage = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                metrics.node_event("invalid", 1);
                warn!(self.log, "an event from another node not understood"; "error" => %e);
                return;
            }
        };
        // what this node broadcast, it has done itself
        if msg.from == node {
            return;
        }
        metrics.node_event("received", 1);
        match msg.event {
            NodeEvent::Push { pushes } => {
                if self.delivery.state.dropping.load(Ordering::SeqCst) {
                    metrics.node_event("dropped", 1);
                    return;
                }
                let hub = &self.delivery.hub;
                for p in pushes {
                    let text: Arc<str> = p.text.into();
                    let seq = p.seq.map(|(conv, seq)| (Arc::<str>::from(conv), seq));
                    if let Some((conv, s)) = &seq {
                        self.hints.note(conv, *s);
                    }
                    for r in p.to {
                        hub.push_audience(r.users, r.about, r.reads, &text, seq.as_ref(), None);
                    }
                }
            }
            NodeEvent::SessionEnded { session } => {
                self.delivery.hub.kick_session(&session);
            }
            NodeEvent::GroupChanged { group } => self.groups.invalidate(group),
        }
    }
}
