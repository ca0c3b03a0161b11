//! Messages: the MongoDB document and the JSON view sent in frames.

use bson::{DateTime, oid::ObjectId};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

/// The id of the conversation between two users, the same from both sides: `"<low>:<high>"`.
pub fn conversation_id(a: u64, b: u64) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// One stored message, in the single `messages` collection.
///
/// Field names are short on purpose: they are repeated in every document and every index key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// [`conversation_id`] of sender and recipient.
    pub conv: String,
    /// Position in the conversation: 1, 2, 3, … with no gaps.
    pub seq: i64,
    pub from: i64,
    pub to: i64,
    pub content: String,
    pub created_at: DateTime,
    /// When the TTL index removes the message; refreshed when it is read.
    pub expire_at: DateTime,
    /// Stored false; set once the message was written to a connection of the recipient (a
    /// push, or an unread list), so a message nobody received always stays unread.
    pub read: bool,
    /// The sender's own id for the message, for idempotent resends. Absent, not null, when not
    /// given, so that the partial unique index on (from, client_msg_id) skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// A message as clients see it, in every frame that carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The message's id (24 hex digits).
    pub id: String,
    pub seq: i64,
    pub from: u64,
    pub to: u64,
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
            to: u64::try_from(d.to).unwrap_or_default(),
            content: d.content.clone(),
            created_at: d.created_at.to_chrono().to_rfc3339_opts(SecondsFormat::Millis, true),
            read: d.read,
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
            to: 2,
            content: "hi".into(),
            created_at: now,
            expire_at: now,
            read: false,
            client_msg_id: None,
        };
        let doc = bson::to_document(&d).unwrap();
        assert!(!doc.contains_key("client_msg_id"));
        let back: MessageDoc = bson::from_document(doc).unwrap();
        assert_eq!(back, d);
        let view = ChatMessage::from(&d);
        assert_eq!(view.from, 1);
        assert!(view.created_at.ends_with('Z'));
    }
}
