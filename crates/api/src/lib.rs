//! `chat-api`: what speaks HTTP and WebSocket. Handlers are plain async functions, gathered
//! as associated functions of one struct per module, and those structs in [`ApiGroup`]:
//! - [`RegisterApi`]: `/user/register`, `/user/login`, `/user/logout`.
//! - [`ChatApi`]: `/ws`, the WebSocket session.
//! - [`SystemApi`]: `/ping`, `/healthz`, `/readyz`.
//!
//! [`error`] holds the one mapping from an error to what a client sees.

pub mod auth;
pub mod chat;
pub mod error;
pub mod register;
pub mod state;
pub mod system;

pub use chat::ChatApi;
pub use error::ApiError;
pub use register::RegisterApi;
pub use state::AppState;
pub use system::SystemApi;

/// Every api of the server, one member per module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiGroup {
    pub register: RegisterApi,
    pub chat: ChatApi,
    pub system: SystemApi,
}
