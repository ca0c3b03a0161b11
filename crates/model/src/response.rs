//! The JSON envelope of every HTTP reply: `{"status", "msg", "data", "error", "code", "field"}`.

use serde::{Deserialize, Serialize};

/// `status` repeats the HTTP status code; `error`, `code` (and `field` where one is at fault)
/// are present only on errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelope<T> {
    pub status: u16,
    pub msg: String,
    /// What was asked for (null in an error: see `ErrorReply` in the description).
    #[schema(nullable = false)]
    pub data: Option<T>,
    /// What went wrong, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went wrong, for a program: stable across versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// The request field at fault (`invalid_field`, `user_name_taken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 429 and 503: seconds until the request may succeed (also the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The machine-readable `code` of an error reply. A client branches on it, never on the
/// `error` text. New codes may be added; a code is never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body, query or path does not parse (the text says how).
    MalformedRequest,
    /// 400: a field's value breaks a rule (`field` names it).
    InvalidField,
    /// 400: a conversation with oneself.
    SelfChat,
    /// 400: some of the users named do not exist.
    UnknownUsers,
    /// 400: a group would have more members than allowed.
    TooManyMembers,
    /// 400: `/ws` asked for without a WebSocket handshake.
    NotWebsocket,
    /// 401: no token, or not a live session (logged out, expired, account disabled).
    Unauthenticated,
    /// 401: the user name and password do not match an account that may log in.
    InvalidCredentials,
    /// 403: a WebSocket from a page of an origin not allowed.
    OriginNotAllowed,
    /// 403: the caller is not a member of the group.
    NotMember,
    /// 403: the caller's role does not allow this change.
    NotAllowed,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route does not take this method (`Allow` lists those it takes).
    MethodNotAllowed,
    /// 404: no such user.
    UserNotFound,
    /// 404: no such group (or it was dissolved).
    GroupNotFound,
    /// 409: the user name is taken (names of deleted accounts stay taken).
    UserNameTaken,
    /// 429: too many attempts or requests; `retry_after` says when to try again.
    RateLimited,
    /// 429: the peer has not answered the messages already waiting.
    NoReplyLimit,
    /// 429: the user has as many live connections as allowed.
    TooManyConnections,
    /// 503: the server is overloaded; try again after `retry_after`.
    Busy,
    /// 503: the server is shutting down; try another node or again later.
    ShuttingDown,
    /// 503: a store does not answer; nothing was changed.
    StoreUnavailable,
    /// 503: the server is not ready to take sends (`/readyz`).
    NotReady,
    /// 500: something failed on the server (the log says what).
    Internal,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope {
            status: 200,
            msg: "ok".into(),
            data: Some(data),
            error: None,
            code: None,
            field: None,
            retry_after: None,
        }
    }

    /// 201: a resource was created (`data` is it).
    pub fn created(data: T) -> Self {
        Envelope { status: 201, ..Envelope::ok(data) }.with_msg("created")
    }

    fn with_msg(mut self, msg: &str) -> Self {
        self.msg = msg.into();
        self
    }
}

impl Envelope<()> {
    pub fn error(status: u16, code: ErrorCode, msg: impl Into<String>, error: impl Into<String>) -> Self {
        Envelope {
            status,
            msg: msg.into(),
            data: None,
            error: Some(error.into()),
            code: Some(code),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }

    pub fn with_field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }
}
