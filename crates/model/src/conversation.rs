//! The conversation list: `GET /conversations`.

use serde::{Deserialize, Serialize};

use crate::{message::ChatMessage, user::PublicUser};

/// One conversation of the logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    pub peer: PublicUser,
    /// Absent once the conversation's messages have expired.
    pub last_message: Option<ChatMessage>,
    /// Messages after my read position (all of them the peer's: sending moves my position).
    pub unread: u64,
    /// The conversation's newest seq.
    pub last_seq: i64,
    /// My read position: I have seen the conversation up to this seq.
    pub read_seq: i64,
    /// The peer's read position: my messages up to it are read.
    pub peer_read_seq: i64,
    /// The peer has a live connection.
    pub online: bool,
}

/// `GET /user/lookup?user_name=`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LookupQuery {
    pub user_name: String,
}
