//! A WebSocket text frame from a client: parsed into a frame or refused with a reason, never
//! a panic; what parses keeps the protocol's bounds.
#![no_main]

use chat_model::{ClientFrame, ReplyCode, frame::MAX_CLIENT_MSG_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ClientFrame::parse(text) {
        Ok(ClientFrame::Send { client_msg_id: Some(id), .. }) => {
            assert!(!id.is_empty() && id.len() <= MAX_CLIENT_MSG_ID)
        }
        Ok(ClientFrame::History { before_seq, limit }) => {
            assert!(before_seq.is_none_or(|s| s >= 1) && limit.is_none_or(|l| l >= 1))
        }
        Ok(_) => {}
        Err(e) => {
            assert!(!e.reason.is_empty());
            assert!(matches!(e.code, ReplyCode::InvalidFrame | ReplyCode::UnknownType));
        }
    }
});
