//! What the nodes (processes) of one service tell each other, as JSON over Redis pub/sub: each
//! node listens on a channel of its own (pushes for the connections it holds) and on one that
//! every node hears (what may concern any of them). Pub/sub is at most once: nothing here is
//! the only copy of anything stored.

use serde::{Deserialize, Serialize};

use crate::Target;

/// An event and the node (process life) it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMessage {
    pub from: String,
    #[serde(flatten)]
    pub event: NodeEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum NodeEvent {
    /// Frames for connections of the receiving node, in the order they are to be written.
    Push { pushes: Vec<NodePush> },
    /// A login session ended (a logout): its connections close, on every node.
    SessionEnded { session: String },
    /// A group's members changed: every node's cache of it is stale.
    GroupChanged { group: u64 },
}

/// One frame for the connections of several users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePush {
    /// The frame, as written to the socket.
    pub text: String,
    /// The conversation and seq of the message it carries, if it carries one: a connection
    /// writes each conversation's messages in increasing seq (a late one is left out; the
    /// client sees the gap and catches up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<(String, i64)>,
    pub to: Vec<NodeRecipient>,
}

/// Whose connections a push goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecipient {
    pub users: Vec<u64>,
    /// The conversation as these users see it: their device connections and those pinned to it
    /// get the frame. None: an event about no one conversation (device connections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<Target>,
    /// The message is to these users, and a connection pinned to its conversation (on screen)
    /// counts it read once written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reads: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_tagged_json() {
        let e = NodeMessage {
            from: "n1".into(),
            event: NodeEvent::Push {
                pushes: vec![NodePush {
                    text: "{}".into(),
                    seq: Some(("1_2".into(), 7)),
                    to: vec![
                        NodeRecipient { users: vec![2], about: Some(Target::User(1)), reads: true },
                        NodeRecipient { users: vec![3, 4], about: None, reads: false },
                    ],
                }],
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.starts_with(r#"{"from":"n1","t":"push""#), "{json}");
        assert!(json.contains(r#"{"users":[3,4]}"#), "{json}");
        assert_eq!(serde_json::from_str::<NodeMessage>(&json).unwrap(), e);
        let kick = NodeMessage { from: "n2".into(), event: NodeEvent::SessionEnded { session: "h".into() } };
        let json = serde_json::to_string(&kick).unwrap();
        assert_eq!(json, r#"{"from":"n2","t":"session_ended","session":"h"}"#);
        assert_eq!(serde_json::from_str::<NodeMessage>(&json).unwrap(), kick);
    }
}
