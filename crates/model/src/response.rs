//! The JSON envelope of every HTTP reply: `{"status", "msg", "data", "error"}`.

use serde::{Deserialize, Serialize};

/// `status` repeats the HTTP status code; `error` is present only on errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub status: u16,
    pub msg: String,
    pub data: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// 429 and 503: seconds until the request may succeed (also the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope { status: 200, msg: "ok".into(), data: Some(data), error: None, retry_after: None }
    }

    /// 201: a resource was created (`data` is it).
    pub fn created(data: T) -> Self {
        Envelope { status: 201, msg: "created".into(), data: Some(data), error: None, retry_after: None }
    }
}

impl Envelope<()> {
    pub fn error(status: u16, msg: impl Into<String>, error: impl Into<String>) -> Self {
        Envelope { status, msg: msg.into(), data: None, error: Some(error.into()), retry_after: None }
    }

    pub fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}
