//! The conversation list: `GET /conversations`.

use serde::{Deserialize, Serialize};

use crate::{message::ChatMessage, user::PublicUser};

/// One conversation of the logged-in user: a direct one (`peer`) or a group's (`group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PublicUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupRef>,
    /// Absent once the conversation's messages have expired.
    pub last_message: Option<ChatMessage>,
    /// Messages after my read position that others sent.
    pub unread: u64,
    /// The conversation's newest seq.
    pub last_seq: i64,
    /// My read position: I have seen the conversation up to this seq.
    pub read_seq: i64,
    /// The peer's read position: my messages up to it are read (direct conversations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_read_seq: Option<i64>,
    /// The peer has a live connection (direct conversations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
}

/// The group of a group conversation in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupRef {
    pub id: u64,
    pub name: String,
    pub member_count: usize,
}

/// `GET /user/lookup?user_name=`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    pub user_name: String,
}
