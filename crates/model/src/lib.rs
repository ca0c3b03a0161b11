//! `chat-model`: the data every layer shares, and nothing that does I/O.
//!
//! - [`schema`], [`user`] and [`session`]: the MySQL tables and their rows (diesel).
//! - [`message`]: the MongoDB message document (bson); [`target`]: the conversation a frame is about.
//! - [`group`]: the MySQL rows of groups and their members.
//! - [`frame`]: the WebSocket frames and their reply codes.
//! - [`conversation`]: the conversation list.
//! - [`response`]: the HTTP JSON envelope.
//! - [`node`]: what the nodes of one service tell each other through Redis pub/sub.
//! - [`config`]: the typed configuration read by `chat-core`.

pub mod config;
pub mod conversation;
pub mod frame;
pub mod group;
pub mod ids;
pub mod message;
pub mod node;
pub mod response;
pub mod schema;
pub mod session;
pub mod target;
pub mod user;

pub use config::Settings;
pub use conversation::{ConversationView, GroupRef, LookupQuery};
pub use frame::{Addressed, ClientFrame, ReplyCode, ServerFrame};
pub use message::{
    ChatMessage, GroupAction, GroupEvent, MessageDoc, MessageKind, conversation_id, group_conversation_id,
    is_group_conversation,
};
pub use node::{NodeEvent, NodeMessage, NodePush, NodeRecipient};
pub use response::{Envelope, ErrorCode};
pub use target::Target;
pub use user::{LoginRequest, LoginResponse, NewUser, PublicUser, RegisterRequest, RegisterResponse, User};
