//! Abuse limits, end to end: login throttling, foreign origins, connections per user, send
//! and read rates.

use serde_json::json;

use crate::{spawn_app, spawn_with};

#[tokio::test]
async fn failed_logins_are_throttled_with_retry_after() {
    let app = spawn_with(|s| s.limits.login_failures = 2).await;
    app.user("alice_01").await;
    let wrong = json!({"user_name": "alice_01", "password": "not-her-password"});
    for _ in 0..2 {
        assert_eq!(app.post("/user/login", wrong.clone(), None).await.0, 401);
    }
    let res = app.http.post(format!("{}/user/login", app.base)).json(&wrong).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!((body["status"].as_u64(), body["retry_after"].as_u64()), (Some(429), Some(retry)));
    // the right password is refused too until the window passes: no guessing around it
    let right = json!({"user_name": "alice_01", "password": "alice_01-password"});
    assert_eq!(app.post("/user/login", right, None).await.0, 429);
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_open_a_socket() {
    let app = spawn_with(|s| s.server.allowed_origins = vec!["https://app.example.com".into()]).await;
    let (alice, bob) = app.two_users().await;
    let q = format!("toUid={}", bob.id);
    let own = format!("http://127.0.0.1:{}", app.port);
    assert_eq!(app.try_ws_from(Some(&alice.token), &q, Some("https://evil.example")).await.err(), Some(403));
    assert!(app.try_ws_from(Some(&alice.token), &q, Some(&own)).await.is_ok(), "the server's own pages");
    assert!(app.try_ws_from(Some(&alice.token), &q, Some("https://app.example.com")).await.is_ok());
    assert!(app.try_ws_from(Some(&alice.token), &q, None).await.is_ok(), "not a browser: not checked");
}

#[tokio::test]
async fn connections_per_user_are_bounded_before_the_upgrade() {
    let app = spawn_with(|s| s.limits.connections_per_user = 2).await;
    let (alice, bob) = app.two_users().await;
    let _a = app.ws(&alice, &bob).await;
    let b = app.ws(&alice, &bob).await;
    let q = format!("toUid={}", bob.id);
    assert_eq!(app.try_ws(Some(&alice.token), &q).await.err(), Some(429));
    // bob has his own allowance; and alice gets hers back when one closes
    let _c = app.ws(&bob, &alice).await;
    drop(b);
    let back = chat_testkit::poll_until(
        std::time::Duration::from_secs(5),
        || async { app.try_ws(Some(&alice.token), &q).await.is_ok() },
        |ok| *ok,
    )
    .await;
    assert!(back);
}

#[tokio::test]
async fn sends_over_the_rate_get_50110_and_reads_over_it_429() {
    let app = spawn_with(|s| {
        s.limits.sends_per_sec = 1;
        s.limits.send_burst = 2;
        s.limits.reads_per_sec = 1;
        s.limits.read_burst = 2;
    })
    .await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    for i in 0..2 {
        assert_eq!(a.ask(json!({"type": 1, "content": format!("m{i}")})).await.code.as_u32(), 50005);
    }
    let refused = a.ask(json!({"type": 1, "content": "too fast", "client_msg_id": "x"})).await;
    assert_eq!(refused.code.as_u32(), 50110, "{refused:?}");
    assert!(refused.retry_after_ms.is_some_and(|ms| (1..=1000).contains(&ms)));
    assert_eq!(refused.client_msg_id.as_deref(), Some("x"));
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 2, "nothing stored");
    for _ in 0..2 {
        assert_eq!(app.get_auth("/conversations", Some(&alice.token)).await.0, 200);
    }
    let res = app.http.get(format!("{}/conversations", app.base)).bearer_auth(&alice.token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_resend_with_other_content_gets_50111_and_a_long_unread_list_comes_in_pages() {
    let app = spawn_with(|s| {
        s.chat.unread_max = 2;
        s.chat.no_reply_limit = 100;
    })
    .await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    for i in 0..3 {
        a.ask(json!({"type": 1, "content": format!("m{i}"), "client_msg_id": format!("c{i}")})).await;
    }
    let clash = a.ask(json!({"type": 1, "content": "something else", "client_msg_id": "c0"})).await;
    assert_eq!(clash.code.as_u32(), 50111, "{clash:?}");
    let mut b = app.ws(&bob, &alice).await;
    let first = b.ask(json!({"type": 3})).await;
    assert_eq!((first.messages.as_ref().unwrap().len(), first.more), (2, Some(true)));
    let second = b.ask(json!({"type": 3})).await;
    assert_eq!((second.messages.as_ref().unwrap().len(), second.more), (1, Some(false)));
    assert_eq!(second.messages.unwrap()[0].seq, 3);
    assert_eq!(b.ask(json!({"type": 3})).await.code.as_u32(), 50003);
    let _ = spawn_app;
}
