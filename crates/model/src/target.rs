//! The conversation a frame, a push or a request is about, from its user's side: a direct
//! conversation (named by the peer) or a group.

use serde::{Deserialize, Serialize};

use crate::message::{conversation_id, group_conversation_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The direct conversation with this user.
    User(u64),
    /// This group's conversation.
    Group(u64),
}

impl Target {
    /// The conversation's id in the store, as `user` sees it.
    pub fn conv(self, user: u64) -> String {
        match self {
            Target::User(peer) => conversation_id(user, peer),
            Target::Group(group) => group_conversation_id(group),
        }
    }

    pub fn group(self) -> Option<u64> {
        match self {
            Target::Group(g) => Some(g),
            Target::User(_) => None,
        }
    }

    pub fn peer(self) -> Option<u64> {
        match self {
            Target::User(p) => Some(p),
            Target::Group(_) => None,
        }
    }
}
