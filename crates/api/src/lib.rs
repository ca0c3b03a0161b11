//! `chat-api`: what speaks HTTP and WebSocket. Handlers are plain async functions, gathered
//! as associated functions of one struct per module, and those structs in [`ApiGroup`]:
//!
//! | api | routes |
//! |---|---|
//! | [`RegisterApi`] | `/user/register`, `/user/login`, `/user/logout`, `/user/me`, `/user/lookup` |
//! | [`ChatApi`] | `/ws` (the session loop is in `session`, frame handling in `frames`) |
//! | [`ConversationApi`] | `/conversations` |
//! | [`GroupApi`] | `/groups`, `/groups/{id}`, its members, roles and owner |
//! | [`SystemApi`] | `/ping`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/frames.schema.json` |
//! | [`WebApi`] | the web client at `/` and `/assets/` |
//!
//! [`error`] holds the one mapping from an error to what a client sees; [`openapi`] the
//! description of every route and the frames' JSON Schema.

pub mod auth;
pub mod chat;
pub mod conversation;
pub mod error;
mod frames;
pub mod group;
pub mod middleware;
pub mod openapi;
pub mod register;
mod session;
pub mod state;
pub mod system;
pub mod web;

pub use chat::ChatApi;
pub use conversation::ConversationApi;
pub use error::ApiError;
pub use group::GroupApi;
pub use register::RegisterApi;
pub use state::AppState;
pub use system::SystemApi;
pub use web::WebApi;

/// Every api of the server, one member per module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiGroup {
    pub register: RegisterApi,
    pub chat: ChatApi,
    pub conversation: ConversationApi,
    pub group: GroupApi,
    pub system: SystemApi,
    pub web: WebApi,
}
