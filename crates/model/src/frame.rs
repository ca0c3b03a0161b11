//! WebSocket frames: what clients send, what the server answers, and the reply codes.
//!
//! Client frames are JSON text typed as in the original demo: `{"type":1,"content":"hi"}` sends,
//! `{"type":2}` asks for history, `{"type":3}` asks for unread messages; and beyond it `4`
//! catches up after a seq, `5` moves the reader's read position, `6` says the user is typing.
//! On a device connection (`/ws`) each names its conversation with `"to": <user id>` (a direct
//! conversation) or `"group": <group id>`.

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};

use crate::{message::ChatMessage, target::Target};

/// The `code` of a server frame, a number on the wire. 50001–50006 are the original demo's;
/// the rest are new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr, schemars::JsonSchema_repr)]
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
    /// A catch-up page: the messages after a seq, oldest first.
    CatchUp = 50009,
    /// A read position moved: `user_id` has read `conv` up to `read_seq`.
    ReadReceipt = 50010,
    /// `user_id` is typing in `conv`.
    Typing = 50011,
    /// `user_id` came online or went offline (`online`).
    Presence = 50012,
    /// The frame is not valid JSON, or a field has the wrong type or value.
    InvalidFrame = 50101,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported = 50102,
    /// `type` is not one of 1 to 6.
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
    /// The frame names a group the user is not a member of (or no longer is). Nothing stored.
    NotMember = 50113,
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
    pub const CATCH_UP: i64 = 4;
    pub const READ: i64 = 5;
    pub const TYPING: i64 = 6;
}

/// A client frame as it arrives, before its rules are checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClientFrame {
    #[serde(rename = "type")]
    pub kind: Option<i64>,
    pub content: Option<String>,
    pub client_msg_id: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: Option<i64>,
    /// The peer of the conversation the frame is about.
    pub to: Option<i64>,
    /// The group the frame is about (instead of `to`).
    pub group: Option<i64>,
    pub after_seq: Option<i64>,
    pub read_seq: Option<i64>,
}

/// A checked client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Send {
        content: String,
        client_msg_id: Option<String>,
    },
    History {
        before_seq: Option<i64>,
        limit: Option<i64>,
    },
    Unread,
    /// The messages with seq above `after_seq`, oldest first.
    CatchUp {
        after_seq: i64,
        limit: Option<i64>,
    },
    /// The reader has seen the conversation up to `read_seq`.
    Read {
        read_seq: i64,
    },
    Typing,
}

/// A checked client frame and the conversation it names, if it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    /// `to` (the peer's user id) or `group`.
    pub to: Option<Target>,
    pub frame: ClientFrame,
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
    /// Parses a text frame, whatever conversation it names (see [`Addressed::parse`]).
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        Addressed::parse(text).map(|a| a.frame)
    }
}

impl Addressed {
    /// Parses a text frame. Content rules that depend on configuration (its size) are the
    /// service's, and whether the frame must name its conversation is the connection's; this
    /// checks only the shape.
    pub fn parse(text: &str) -> Result<Addressed, FrameError> {
        let invalid = |reason: String| FrameError { code: ReplyCode::InvalidFrame, reason };
        let raw: RawClientFrame = serde_json::from_str(text).map_err(|e| invalid(format!("not a valid frame: {e}")))?;
        let to = match (raw.to, raw.group) {
            (None, None) => None,
            (Some(_), Some(_)) => return Err(invalid("name one conversation: `to` or `group`, not both".into())),
            (Some(id), None) if id >= 1 => Some(Target::User(id as u64)),
            (Some(_), None) => return Err(invalid("to must be a user id (at least 1)".into())),
            (None, Some(id)) if id >= 1 => Some(Target::Group(id as u64)),
            (None, Some(_)) => return Err(invalid("group must be a group id (at least 1)".into())),
        };
        let frame = Self::frame(raw, invalid)?;
        Ok(Addressed { to, frame })
    }

    fn frame(raw: RawClientFrame, invalid: impl Fn(String) -> FrameError) -> Result<ClientFrame, FrameError> {
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
            Some(frame_type::CATCH_UP) => {
                let after_seq = raw.after_seq.ok_or_else(|| invalid("missing field `after_seq`".into()))?;
                if after_seq < 0 {
                    return Err(invalid("after_seq must be at least 0".into()));
                }
                if raw.limit.is_some_and(|l| l < 1) {
                    return Err(invalid("limit must be at least 1".into()));
                }
                Ok(ClientFrame::CatchUp { after_seq, limit: raw.limit })
            }
            Some(frame_type::READ) => match raw.read_seq {
                None => Err(invalid("missing field `read_seq`".into())),
                Some(s) if s < 0 => Err(invalid("read_seq must be at least 0".into())),
                Some(read_seq) => Ok(ClientFrame::Read { read_seq }),
            },
            Some(frame_type::TYPING) => Ok(ClientFrame::Typing),
            Some(other) => Err(FrameError {
                code: ReplyCode::UnknownType,
                reason: format!(
                    "unknown type {other}: use 1 (send), 2 (history), 3 (unread), 4 (catch-up), 5 (read) or 6 (typing)"
                ),
            }),
        }
    }
}

/// A server frame. Only the fields that apply are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// 50002: the authenticated user (and the peer of a conversation's socket); 50010–50012:
    /// the user the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<u64>,
    /// 50002 on a group's socket, 50010 and 50011 in a group: the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
    /// 50010, 50011: the conversation the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<String>,
    /// 50010: the reader's read position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_seq: Option<i64>,
    /// 50012: whether `user_id` is online now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    /// 50008, 50009: there are more messages than this frame carries; ask again.
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
            group_id: None,
            conv: None,
            read_seq: None,
            online: None,
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

    /// Names the conversation the frame is about (`peer_id` or `group_id`): on the error that
    /// refuses a typing frame, which has no reply to be matched with otherwise.
    pub fn about(mut self, target: Target) -> Self {
        self.peer_id = target.peer();
        self.group_id = target.group();
        self
    }

    /// 50108: the connection's session was logged out or expired.
    pub fn session_ended() -> Self {
        ServerFrame::new(ReplyCode::SessionEnded, "session ended; log in again")
    }

    /// 50002; `peer_id` on a conversation's socket (`?toUid=`), `group_id` on a group's
    /// (`?groupId=`), neither on a device connection.
    pub fn connected(user_id: u64, pin: Option<Target>) -> Self {
        let mut f = ServerFrame::new(ReplyCode::Connected, "connected");
        f.user_id = Some(user_id);
        f.peer_id = pin.and_then(Target::peer);
        f.group_id = pin.and_then(Target::group);
        f
    }

    /// 50010: `reader` has read `conv` (in `group`, if it is one) up to `read_seq`.
    pub fn read_receipt(conv: &str, group: Option<u64>, reader: u64, read_seq: i64) -> Self {
        let mut f = ServerFrame::new(ReplyCode::ReadReceipt, "read");
        f.conv = Some(conv.to_string());
        f.group_id = group;
        f.user_id = Some(reader);
        f.read_seq = Some(read_seq);
        f
    }

    /// 50011: `typist` is typing in `conv` (in `group`, if it is one).
    pub fn typing(conv: &str, group: Option<u64>, typist: u64) -> Self {
        let mut f = ServerFrame::new(ReplyCode::Typing, "typing");
        f.conv = Some(conv.to_string());
        f.group_id = group;
        f.user_id = Some(typist);
        f
    }

    /// 50012: `user` came online or went offline.
    pub fn presence(user: u64, online: bool) -> Self {
        let mut f = ServerFrame::new(ReplyCode::Presence, if online { "online" } else { "offline" });
        f.user_id = Some(user);
        f.online = Some(online);
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
    fn parses_the_device_frames_and_their_conversation() {
        assert_eq!(
            Addressed::parse(r#"{"type":4,"to":2,"after_seq":17,"limit":100}"#).unwrap(),
            Addressed { to: Some(Target::User(2)), frame: ClientFrame::CatchUp { after_seq: 17, limit: Some(100) } }
        );
        assert_eq!(
            Addressed::parse(r#"{"type":5,"to":2,"read_seq":20}"#).unwrap(),
            Addressed { to: Some(Target::User(2)), frame: ClientFrame::Read { read_seq: 20 } }
        );
        assert_eq!(
            Addressed::parse(r#"{"type":6,"to":3}"#).unwrap(),
            Addressed { to: Some(Target::User(3)), frame: ClientFrame::Typing }
        );
        assert_eq!(
            Addressed::parse(r#"{"type":1,"group":7,"content":"hi"}"#).unwrap(),
            Addressed {
                to: Some(Target::Group(7)),
                frame: ClientFrame::Send { content: "hi".into(), client_msg_id: None }
            }
        );
        assert_eq!(Addressed::parse(r#"{"type":3}"#).unwrap(), Addressed { to: None, frame: ClientFrame::Unread });
        for bad in [
            r#"{"type":4,"to":2}"#,
            r#"{"type":4,"to":2,"after_seq":-1}"#,
            r#"{"type":4,"to":2,"after_seq":1,"limit":0}"#,
            r#"{"type":5,"to":2}"#,
            r#"{"type":5,"to":2,"read_seq":-3}"#,
            r#"{"type":6,"to":0}"#,
            r#"{"type":6,"to":"2"}"#,
            r#"{"type":6,"group":0}"#,
            r#"{"type":6,"to":2,"group":3}"#,
        ] {
            assert_eq!(Addressed::parse(bad).unwrap_err().code, ReplyCode::InvalidFrame, "{bad}");
        }
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
