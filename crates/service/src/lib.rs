//! `chat-service`: the rules. No HTTP and no driver types in its public API.
//!
//! [`ServiceGroup`] gathers one service per module, built once at start-up from the
//! [`DaoGroup`](chat_dao::DaoGroup) and the settings, with the background [`Workers`] they
//! start and the [`Metrics`] they keep:
//! - [`register`]: accounts, passwords (argon2id, bounded), login sessions, attempt throttles.
//! - [`chat`]: connections, sending, the no-reply limit, seq numbers, history, unread,
//!   catch-up, live delivery; its workers are the committers, the read marks and the node
//!   heartbeat. `events`: read receipts, typing, presence; `reads`: read positions.
//! - [`groups`]: groups, their members and roles, the membership cache.
//! - [`conversation`]: the conversation list (direct conversations and groups).
//! - [`health`]: whether the stores answer and the workers run.
//! - [`limits`]: the per-user rates.

pub mod admin;
pub mod chat;
mod cluster;
mod commit;
pub mod conversation;
mod error;
mod events;
pub mod groups;
pub mod health;
mod heartbeat;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod reading;
pub mod reads;
pub mod register;
pub mod workers;

use std::sync::Arc;

use chat_dao::DaoGroup;
use chat_model::Settings;

pub use admin::AdminService;
pub use chat::{ChatService, Connection, PendingSend, SendOutcome};
pub use conversation::ConversationService;
pub use error::{ServiceError, ServiceResult};
pub use groups::GroupService;
pub use health::{HealthService, Readiness};
pub use hub::{Hub, Kick, Outbound};
pub use limits::Limits;
pub use metrics::Metrics;
pub use reading::UnreadPage;
pub use register::{AuthUser, RegisterService};
pub use workers::Workers;

#[derive(Clone)]
pub struct ServiceGroup {
    pub register: RegisterService,
    pub chat: ChatService,
    pub conversation: ConversationService,
    pub group: GroupService,
    pub health: HealthService,
    pub workers: Workers,
    pub metrics: Metrics,
}

/// How often a node looks for nodes whose lease lapsed: a second, or half the lease's ttl.
fn sweep_interval(settings: &Settings) -> std::time::Duration {
    let ttl = std::time::Duration::from_secs(settings.cluster.lease_ttl_secs.max(1));
    (ttl / 2).min(std::time::Duration::from_secs(1))
}

impl ServiceGroup {
    /// Builds the services and starts their workers on the current tokio runtime.
    pub fn new(daos: &DaoGroup, settings: &Settings, log: &slog::Logger) -> ServiceGroup {
        let metrics = Metrics::default();
        let workers = Workers::new(metrics.clone(), log);
        let hub = Arc::new(Hub::with_gauge(metrics.connections.clone()));
        let limits = Limits::new(&settings.limits, metrics.clone());
        let (sessions, janitor_limits, janitor_log) =
            (daos.session.clone(), limits.clone(), log.new(slog::o!("task" => "janitor")));
        workers.spawn("janitor", move |stop| {
            heartbeat::janitor(sessions.clone(), janitor_limits.clone(), janitor_log.clone(), stop)
        });
        let chat = ChatService::new(daos, settings, hub.clone(), limits.clone(), &workers, metrics.clone(), log);
        let (sweeper, every) = (chat.clone(), sweep_interval(settings));
        workers.spawn("node-sweep", move |stop| sweeper.clone().sweep_lapsed_nodes(every, stop));
        let group = GroupService::new(daos, &chat, &settings.group, limits.clone(), log);
        let events = group.clone();
        workers.spawn("group-events", move |stop| events.clone().run_events(stop));
        let health = HealthService::new(daos, workers.clone(), chat.delivery.clone());
        ServiceGroup {
            register: RegisterService::new(daos, settings, chat.delivery.clone(), limits.clone(), metrics.clone(), log),
            group,
            conversation: ConversationService::new(daos, chat.presence.clone(), &settings.group, limits),
            chat,
            health,
            workers,
            metrics,
        }
    }

    /// Stops the workers in the order that drains the send path: the committers (every queued
    /// send stored and answered), then the read marks (what was written is marked), then the
    /// rest. Call it once the connections have closed.
    pub async fn stop_workers(&self) {
        // the events of membership changes are recorded through the committers: stopped first
        self.workers.stop("group-events").await;
        self.workers.stop(commit::WORKER).await;
        self.workers.stop("read-marks").await;
        self.workers.stop("").await;
    }
}
