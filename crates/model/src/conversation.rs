//! The conversation list: `GET /conversations`.

use serde::{Deserialize, Serialize};

use crate::{message::ChatMessage, user::PublicUser};

/// One conversation of the logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    pub peer: PublicUser,
    /// Absent once the conversation's messages have expired.
    pub last_message: Option<ChatMessage>,
    /// Messages sent to the logged-in user and not read yet.
    pub unread: u64,
}

/// `GET /user/lookup?user_name=`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LookupQuery {
    pub user_name: String,
}
