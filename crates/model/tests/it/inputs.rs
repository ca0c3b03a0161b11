//! Whatever a client sends, parsing gives a frame or a clear error, never a panic; and what
//! parses means what was sent. (A coverage-guided fuzzer runs the same properties for longer:
//! `fuzz/`.)

use chat_model::{ClientFrame, LoginRequest, RegisterRequest, ReplyCode};
use proptest::prelude::*;
use validator::Validate as _;

/// JSON values shaped like frames: the real keys with values of any type, and others.
fn frame_like() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() { f.to_string() } else { "0".into() }),
        ".{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[1,2]".to_string()),
        Just("{\"a\":1}".to_string()),
    ];
    let key = prop_oneof![
        Just("type"),
        Just("content"),
        Just("client_msg_id"),
        Just("before_seq"),
        Just("limit"),
        Just("other"),
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
        let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!("{{{}}}", fields.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn any_text_parses_or_is_refused_with_a_reason(text in ".{0,200}") {
        if let Err(e) = ClientFrame::parse(&text) {
            prop_assert!(!e.reason.is_empty());
            prop_assert!(matches!(e.code, ReplyCode::InvalidFrame | ReplyCode::UnknownType));
        }
    }

    #[test]
    fn frame_shaped_json_parses_or_is_refused_with_a_reason(text in frame_like()) {
        match ClientFrame::parse(&text) {
            Ok(ClientFrame::Send { client_msg_id: Some(id), .. }) => {
                prop_assert!(!id.is_empty() && id.len() <= chat_model::frame::MAX_CLIENT_MSG_ID);
            }
            Ok(ClientFrame::History { before_seq, limit }) => {
                prop_assert!(before_seq.is_none_or(|s| s >= 1) && limit.is_none_or(|l| l >= 1));
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.reason.is_empty()),
        }
    }

    #[test]
    fn a_send_says_what_was_sent(content in ".{0,300}", id in "[a-zA-Z0-9-]{1,64}") {
        let text = serde_json::json!({"type": 1, "content": content, "client_msg_id": id}).to_string();
        prop_assert_eq!(
            ClientFrame::parse(&text).unwrap(),
            ClientFrame::Send { content, client_msg_id: Some(id) }
        );
    }

    #[test]
    fn http_bodies_deserialize_and_validate_without_panicking(
        nick in ".{0,20}", user in ".{0,20}", password in ".{0,80}"
    ) {
        let body = serde_json::json!({"nick_name": nick, "user_name": user, "password": password}).to_string();
        let register: RegisterRequest = serde_json::from_str(&body).unwrap();
        let valid = register.validate().is_ok();
        let len = |s: &str| s.chars().count();
        prop_assert_eq!(
            valid,
            (2..=10).contains(&len(&nick))
                && chat_model::user::validate_user_name(&user).is_ok()
                && (8..=64).contains(&len(&password))
        );
        let login: Result<LoginRequest, _> = serde_json::from_str(&body);
        prop_assert!(login.is_ok());
        // and a body that is not one never panics
        let _ = serde_json::from_str::<RegisterRequest>(&nick);
    }
}
