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
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope { status: 200, msg: "ok".into(), data: Some(data), error: None }
    }
}

impl Envelope<()> {
    pub fn error(status: u16, msg: impl Into<String>, error: impl Into<String>) -> Self {
        Envelope { status, msg: msg.into(), data: None, error: Some(error.into()) }
    }
}
