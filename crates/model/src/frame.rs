//! WebSocket frames: what clients send, what the server answers, and the reply codes.
//!
//! Client frames are JSON text typed as in the original demo: `{"type":1,"content":"hi"}` sends,
//! `{"type":2}` asks for history, `{"type":3}` asks for unread messages.

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};

use crate::message::ChatMessage;

/// The `code` of a server frame, a number on the wire. 50001–50006 are the original demo's;
/// the rest are new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u32)]
pub enum ReplyCode {
    /// A message from the peer (pushed).
    Incoming = 50001,
    /// The connection is open and authenticated.
    Connected = 50002,
    /// Nothing (more) to return: no older history, or no unread messages.
    End = 50003,
    /// Sent and stored; a live connection of the peer was handed it.
    Delivered = 50004,
    /// Sent and stored; no connection of the peer took it: it waits unread.
    StoredOffline = 50005,
    /// Refused: the no-reply limit was reached. Nothing stored.
    NoReplyLimit = 50006,
    /// A page of history, newest first.
    History = 50007,
    /// The unread messages of the conversation, oldest first.
    Unread = 50008,
    /// The frame is not valid JSON, or a field has the wrong type or value.
    InvalidFrame = 50101,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported = 50102,
    /// `type` is not 1, 2 or 3.
    UnknownType = 50103,
    /// A send with empty (or blank) content.
    EmptyContent = 50104,
    /// A send whose content is over the configured limit.
    ContentTooLarge = 50105,
    /// A store did not answer; nothing was stored, try again.
    StoreUnavailable = 50106,
    /// Something failed on the server; the frame says whether anything was stored.
    Internal = 50107,
    /// The session ended (logged out, expired, or the account disabled); the server closes
    /// the connection.
    SessionEnded = 50108,
    /// The server is overloaded (its store is behind); nothing was stored, send again.
    Busy = 50109,
    /// Too many sends: over the user's rate. Nothing stored; send again after
    /// `retry_after_ms`.
    RateLimited = 50110,
    /// The `client_msg_id` names a stored message with other content. Nothing stored.
    ClientMsgIdConflict = 50111,
    /// The server is shutting down; nothing stored: reconnect and send again.
    ShuttingDown = 50112,
}

impl ReplyCode {
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// The type numbers of client frames.
pub mod frame_type {
    pub const SEND: i64 = 1;
    pub const HISTORY: i64 = 2;
    pub const UNREAD: i64 = 3;
}

/// A client frame as it arrives, before its rules are checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientFrame {
    #[serde(rename = "type")]
    pub kind: Option<i64>,
    pub content: Option<String>,
    pub client_msg_id: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: Option<i64>,
}

/// A checked client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Send { content: String, client_msg_id: Option<String> },
    History { before_seq: Option<i64>, limit: Option<i64> },
    Unread,
}

/// Why a text frame is not a [`ClientFrame`]; the error frame says this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: ReplyCode,
    pub reason: String,
}

/// Longest accepted `client_msg_id`, in bytes.
pub const MAX_CLIENT_MSG_ID: usize = 64;

impl ClientFrame {
    /// Parses a text frame. Content rules that depend on configuration (its size) are the
    /// service's; this checks only the shape.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        let invalid = |reason: String| FrameError { code: ReplyCode::InvalidFrame, reason };
        let raw: RawClientFrame = serde_json::from_str(text).map_err(|e| invalid(format!("not a valid frame: {e}")))?;
        match raw.kind {
            None => Err(invalid("missing field `type`".into())),
            Some(frame_type::SEND) => {
                let content = raw.content.unwrap_or_default();
                if let Some(id) = &raw.client_msg_id
                    && (id.is_empty() || id.len() > MAX_CLIENT_MSG_ID)
                {
                    return Err(invalid(format!("client_msg_id must be 1 to {MAX_CLIENT_MSG_ID} bytes")));
                }
                Ok(ClientFrame::Send { content, client_msg_id: raw.client_msg_id })
            }
            Some(frame_type::HISTORY) => {
                if raw.before_seq.is_some_and(|s| s < 1) {
                    return Err(invalid("before_seq must be at least 1".into()));
                }
                if raw.limit.is_some_and(|l| l < 1) {
                    return Err(invalid("limit must be at least 1".into()));
                }
                Ok(ClientFrame::History { before_seq: raw.before_seq, limit: raw.limit })
            }
            Some(frame_type::UNREAD) => Ok(ClientFrame::Unread),
            Some(other) => Err(FrameError {
                code: ReplyCode::UnknownType,
                reason: format!("unknown type {other}: use 1 (send), 2 (history) or 3 (unread)"),
            }),
        }
    }
}

/// A server frame. Only the fields that apply are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFrame {
    pub code: ReplyCode,
    pub content: String,
    /// The one message a frame is about (50001, 50004, 50005).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChatMessage>,
    /// A list of messages (50007 history, 50008 unread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Echoed from the send it answers, when that send carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// 50002: the authenticated user and the peer of this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<u64>,
    /// 50008: there are more unread messages than this frame carries; ask again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// 50110: when a send may succeed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ServerFrame {
    pub fn new(code: ReplyCode, content: impl Into<String>) -> Self {
        ServerFrame {
            code,
            content: content.into(),
            message: None,
            messages: None,
            client_msg_id: None,
            user_id: None,
            peer_id: None,
            more: None,
            retry_after_ms: None,
        }
    }

    pub fn with_message(mut self, m: ChatMessage) -> Self {
        self.client_msg_id = m.client_msg_id.clone();
        self.message = Some(m);
        self
    }

    pub fn with_messages(mut self, ms: Vec<ChatMessage>) -> Self {
        self.messages = Some(ms);
        self
    }

    pub fn with_more(mut self, more: bool) -> Self {
        self.more = Some(more);
        self
    }

    pub fn with_retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    pub fn with_client_msg_id(mut self, id: Option<String>) -> Self {
        self.client_msg_id = id;
        self
    }

    /// 50108: the connection's session was logged out or expired.
    pub fn session_ended() -> Self {
        ServerFrame::new(ReplyCode::SessionEnded, "session ended; log in again")
    }

    pub fn connected(user_id: u64, peer_id: u64) -> Self {
        let mut f = ServerFrame::new(ReplyCode::Connected, "connected");
        f.user_id = Some(user_id);
        f.peer_id = Some(peer_id);
        f
    }

    pub fn to_json(&self) -> String {
        // Serializing this struct cannot fail: every field is a string, number, bool or list.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"code":50107,"content":"internal error"}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_types() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":1,"content":"hi","client_msg_id":"a1"}"#).unwrap(),
            ClientFrame::Send { content: "hi".into(), client_msg_id: Some("a1".into()) }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":2,"before_seq":5,"limit":10}"#).unwrap(),
            ClientFrame::History { before_seq: Some(5), limit: Some(10) }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":2}"#).unwrap(),
            ClientFrame::History { before_seq: None, limit: None }
        );
        assert_eq!(ClientFrame::parse(r#"{"type":3}"#).unwrap(), ClientFrame::Unread);
    }

    #[test]
    fn rejects_bad_frames_with_a_reason() {
        for (text, code) in [
            ("not json", ReplyCode::InvalidFrame),
            ("{}", ReplyCode::InvalidFrame),
            (r#"{"type":"1"}"#, ReplyCode::InvalidFrame),
            (r#"{"type":1,"content":5}"#, ReplyCode::InvalidFrame),
            (r#"{"type":1,"content":"x","bogus":1}"#, ReplyCode::InvalidFrame),
            (r#"{"type":2,"limit":0}"#, ReplyCode::InvalidFrame),
            (r#"{"type":2,"before_seq":-1}"#, ReplyCode::InvalidFrame),
            (r#"{"type":1,"content":"x","client_msg_id":""}"#, ReplyCode::InvalidFrame),
            (r#"{"type":9}"#, ReplyCode::UnknownType),
        ] {
            let err = ClientFrame::parse(text).unwrap_err();
            assert_eq!(err.code, code, "{text}");
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn reply_codes_round_trip_as_numbers() {
        let f = ServerFrame::new(ReplyCode::NoReplyLimit, "limit");
        let json = f.to_json();
        assert!(json.starts_with(r#"{"code":50006,"#), "{json}");
        let back: ServerFrame = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(serde_json::from_str::<ServerFrame>(r#"{"code":12345,"content":""}"#).is_err());
    }
}
