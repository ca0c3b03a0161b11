//! The JSON bodies of `/user/register` and `/user/login`: deserialized and checked against
//! their rules, never a panic.
#![no_main]

use chat_model::{LoginRequest, LookupQuery, RegisterRequest};
use libfuzzer_sys::fuzz_target;
use validator::Validate as _;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<RegisterRequest>(data) {
        let _ = r.validate();
        let _ = chat_model::user::validate_user_name(&r.user_name);
    }
    let _ = serde_json::from_slice::<LoginRequest>(data);
    let _ = serde_json::from_slice::<LookupQuery>(data);
});
