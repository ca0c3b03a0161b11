//! Messages: the MongoDB document and the JSON view sent in frames.

use bson::{DateTime, oid::ObjectId};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

/// The id of the conversation between two users, the same from both sides: `"<low>:<high>"`.
pub fn conversation_id(a: u64, b: u64) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// The id of a group's conversation: `"g:<group id>"`.
pub fn group_conversation_id(group: u64) -> String {
    format!("g:{group}")
}

/// Whether a conversation id is a group's.
pub fn is_group_conversation(conv: &str) -> bool {
    conv.starts_with("g:")
}

/// What a message is: a user's (absent in the store) or the group's own record of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Written by the server: a membership change (its `event` says which).
    System,
}

/// What changed in a group, as its system message records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupAction {
    Created,
    Added,
    Removed,
    Left,
    Renamed,
    RoleChanged,
    OwnerChanged,
    Dissolved,
}

/// A system message's change: what happened, who did it (`actor`), to whom (`users`), and the
/// new name or role where one applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct GroupEvent {
    pub action: GroupAction,
    pub actor: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// One stored message, in the single `messages` collection.
///
/// Field names are short on purpose: they are repeated in every document and every index key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// [`conversation_id`] of sender and recipient, or [`group_conversation_id`].
    pub conv: String,
    /// Position in the conversation: 1, 2, 3, … with no gaps.
    pub seq: i64,
    pub from: i64,
    /// The recipient of a direct message; absent in a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// The group of a group message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    /// Absent: a user's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageKind>,
    /// A system message's change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<GroupEvent>,
    pub content: String,
    pub created_at: DateTime,
    /// When the TTL index removes the message; refreshed when it is read.
    pub expire_at: DateTime,
    /// Stored false; follows the recipient's read position (a direct message). Group messages
    /// have many readers: their read state is the members' positions alone; their flag is stored
    /// true, so that the partial unread index (`read: false`) leaves them out, and shown false.
    pub read: bool,
    /// The sender's own id for the message, for idempotent resends. Absent, not null, when not
    /// given, so that the partial unique index on (from, client_msg_id) skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// A message as clients see it, in every frame that carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct ChatMessage {
    /// The message's id (24 hex digits).
    pub id: String,
    pub seq: i64,
    pub from: u64,
    /// The recipient of a direct message; absent in a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// The group of a group message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
    /// `"system"` for a group's record of a membership change; absent for a user's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<GroupEvent>,
    pub content: String,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
    pub read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

impl From<&MessageDoc> for ChatMessage {
    fn from(d: &MessageDoc) -> Self {
        ChatMessage {
            id: d.id.to_hex(),
            seq: d.seq,
            from: u64::try_from(d.from).unwrap_or_default(),
            to: d.to.and_then(|t| u64::try_from(t).ok()),
            group_id: d.group_id.and_then(|g| u64::try_from(g).ok()),
            kind: d.kind,
            event: d.event.clone(),
            content: d.content.clone(),
            created_at: d.created_at.to_chrono().to_rfc3339_opts(SecondsFormat::Millis, true),
            // a group message's flag means nothing to its readers (see `MessageDoc::read`)
            read: d.read && d.group_id.is_none(),
            client_msg_id: d.client_msg_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_id_is_symmetric() {
        assert_eq!(conversation_id(7, 3), "3:7");
        assert_eq!(conversation_id(3, 7), "3:7");
        // compared as numbers, not strings: 10 > 9
        assert_eq!(conversation_id(10, 9), "9:10");
    }

    #[test]
    fn absent_client_msg_id_is_not_serialized() {
        let now = DateTime::now();
        let d = MessageDoc {
            id: ObjectId::new(),
            conv: "1:2".into(),
            seq: 1,
            from: 1,
            to: Some(2),
            group_id: None,
            kind: None,
            event: None,
            content: "hi".into(),
            created_at: now,
            expire_at: now,
            read: false,
            client_msg_id: None,
        };
        let doc = bson::to_document(&d).unwrap();
        assert!(!doc.contains_key("client_msg_id"));
        assert!(!doc.contains_key("group_id") && !doc.contains_key("kind"), "a direct message has no group fields");
        let back: MessageDoc = bson::from_document(doc).unwrap();
        assert_eq!(back, d);
        let view = ChatMessage::from(&d);
        assert_eq!(view.from, 1);
        assert!(view.created_at.ends_with('Z'));
    }
}
