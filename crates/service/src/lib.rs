//! `chat-service`: the rules. No HTTP and no driver types in its public API.
//!
//! [`ServiceGroup`] gathers one service per module, built once at start-up from the
//! [`DaoGroup`](chat_dao::DaoGroup) and the settings:
//! - [`register`]: accounts, passwords (argon2id), login sessions.
//! - [`chat`]: sending, the no-reply limit, seq numbers, history, unread, live delivery.
//! - [`conversation`]: the conversation list.
//! - [`health`]: whether the stores answer.

pub mod chat;
mod commit;
pub mod conversation;
mod error;
pub mod health;
pub mod hub;
pub mod register;

use std::sync::Arc;

use chat_dao::DaoGroup;
use chat_model::Settings;

pub use chat::{ChatService, Connection, PendingSend, SendOutcome};
pub use conversation::ConversationService;
pub use error::{ServiceError, ServiceResult};
pub use health::HealthService;
pub use hub::{Hub, Kick, Outbound};
pub use register::{AuthUser, RegisterService};

#[derive(Clone)]
pub struct ServiceGroup {
    pub register: RegisterService,
    pub chat: ChatService,
    pub conversation: ConversationService,
    pub health: HealthService,
}

impl ServiceGroup {
    pub fn new(daos: &DaoGroup, settings: &Settings, log: &slog::Logger) -> ServiceGroup {
        let hub = Arc::new(Hub::default());
        ServiceGroup {
            register: RegisterService::new(daos, settings, hub.clone(), log),
            chat: ChatService::new(daos, settings, hub, log),
            conversation: ConversationService::new(daos),
            health: HealthService::new(daos),
        }
    }
}
