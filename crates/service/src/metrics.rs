//! The service's figures for `/metrics` (Prometheus): live connections, sends by outcome,
//! commit batch sizes and insert latency, queue depths, throttled requests, worker restarts.
//! Built once with the [`ServiceGroup`](crate::ServiceGroup) and registered by the start-up.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: String,
}

#[derive(Clone)]
pub struct Metrics {
    /// WebSocket connections open on this process.
    pub connections: Gauge,
    /// Sends answered, by outcome (`stored`, `resent`, `no_reply_limit`, `rate_limited`, …).
    pub sends: Family<OutcomeLabel, Counter>,
    /// Sends stored together per commit.
    pub batch_size: Histogram,
    /// Seconds one ordered insert took (with the write concern's wait).
    pub insert_seconds: Histogram,
    /// Inserts whose outcome was unknown (a timeout, a lost connection) and had to be settled.
    pub unknown_outcomes: Counter,
    /// Inserts that met a seq another process took first (and were retried after it).
    pub seq_conflicts: Counter,
    /// Items waiting, per queue (`commit-<shard>`, `read-marks`).
    pub queue_depth: Family<QueueLabel, Gauge>,
    /// Requests refused by an abuse limit, by limit.
    pub throttled: Family<LimitLabel, Counter>,
    /// Background workers restarted after they ended unexpectedly.
    pub worker_restarts: Family<WorkerLabel, Counter>,
    /// Read marks dropped because their queue was full (their messages stay unread).
    pub read_marks_dropped: Counter,
    /// What passed between nodes, by outcome (`published`, `unheard`, `received`, `dropped`,
    /// `invalid`, `late`).
    pub node_events: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Gauge::default(),
            sends: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            insert_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            unknown_outcomes: Counter::default(),
            seq_conflicts: Counter::default(),
            queue_depth: Family::default(),
            throttled: Family::default(),
            worker_restarts: Family::default(),
            read_marks_dropped: Counter::default(),
            node_events: Family::default(),
        }
    }
}

impl Metrics {
    /// Outcomes of `chat_sends_total`, listed at 0 until they happen.
    pub const SEND_OUTCOMES: [&'static str; 10] = [
        "stored",
        "resent",
        "no_reply_limit",
        "rate_limited",
        "busy",
        "shutting_down",
        "invalid",
        "client_msg_id_conflict",
        "store_unavailable",
        "internal",
    ];
    /// Outcomes of `chat_node_events_total`.
    pub const NODE_EVENT_OUTCOMES: [&'static str; 6] =
        ["published", "unheard", "received", "dropped", "invalid", "late"];
    /// Limits of `chat_throttled_total`.
    pub const LIMITS: [&'static str; 5] = ["login", "register", "sends", "reads", "connections"];

    pub fn register(&self, registry: &mut Registry) {
        for outcome in Self::SEND_OUTCOMES {
            let _ = self.sends.get_or_create(&OutcomeLabel { outcome });
        }
        for outcome in Self::NODE_EVENT_OUTCOMES {
            let _ = self.node_events.get_or_create(&OutcomeLabel { outcome });
        }
        for limit in Self::LIMITS {
            let _ = self.throttled.get_or_create(&LimitLabel { limit });
        }
        registry.register("chat_connections", "WebSocket connections open on this process", self.connections.clone());
        registry.register("chat_sends", "Sends answered, by outcome", self.sends.clone());
        registry.register("chat_commit_batch_size", "Sends stored together per commit", self.batch_size.clone());
        registry.register_with_unit(
            "chat_commit_insert",
            "Time one ordered insert of a commit took",
            prometheus_client::registry::Unit::Seconds,
            self.insert_seconds.clone(),
        );
        registry.register(
            "chat_commit_unknown_outcomes",
            "Inserts whose outcome was unknown and were settled before answering",
            self.unknown_outcomes.clone(),
        );
        registry.register(
            "chat_commit_seq_conflicts",
            "Inserts that met a seq another process took first and were retried",
            self.seq_conflicts.clone(),
        );
        registry.register("chat_queue_depth", "Items waiting, per queue", self.queue_depth.clone());
        registry.register(
            "chat_read_marks_dropped",
            "Read marks dropped with their queue full (their messages stay unread)",
            self.read_marks_dropped.clone(),
        );
        registry.register(
            "chat_node_events",
            "Events between nodes: published, unheard (no node listened), received, dropped, invalid, late pushes left out",
            self.node_events.clone(),
        );
        registry.register("chat_throttled", "Requests refused by an abuse limit, by limit", self.throttled.clone());
        registry.register(
            "chat_worker_restarts",
            "Background workers restarted after ending unexpectedly",
            self.worker_restarts.clone(),
        );
    }

    pub fn send(&self, outcome: &'static str) {
        self.sends.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn node_event(&self, outcome: &'static str, n: u64) {
        self.node_events.get_or_create(&OutcomeLabel { outcome }).inc_by(n);
    }

    pub fn throttle(&self, limit: &'static str) {
        self.throttled.get_or_create(&LimitLabel { limit }).inc();
    }

    pub fn queue(&self, queue: &str, depth: usize) {
        self.queue_depth.get_or_create(&QueueLabel { queue: queue.to_string() }).set(depth as i64);
    }
}
