//! The server's own view of itself: metrics, readiness, a graceful shutdown.

use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    a.ask(json!({"type": 1, "content": "counted"})).await;
    let res = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = res.text().await.unwrap();
    for line in [
        "chat_connections 1",
        "chat_sends_total{outcome=\"stored\"} 1",
        "# TYPE chat_commit_batch_size histogram",
        "# TYPE chat_commit_insert_seconds histogram",
        "chat_store_errors_total{store=\"mongodb\"} 0",
        "chat_store_errors_total{store=\"redis\"} 0",
        "chat_throttled_total{limit=\"login\"} 0",
        "chat_sends_total{outcome=\"busy\"} 0",
        "# TYPE chat_queue_depth gauge",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

/// SIGTERM's path: the reply to a send in flight is written, then the socket closes with
/// 1001; readiness says 503 from the start; nothing is lost.
#[tokio::test]
async fn a_graceful_stop_answers_what_is_in_flight_then_closes_with_1001() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    for i in 0..20 {
        a.send_json(json!({"type": 1, "content": format!("m{i}"), "client_msg_id": format!("c{i}")})).await;
    }
    let stopper = app.stopper.clone();
    let stopping = tokio::spawn(async move { stopper.stop().await });
    let mut answered = 0;
    loop {
        use futures_util::StreamExt as _;
        match tokio::time::timeout(std::time::Duration::from_secs(10), a.stream.next()).await.unwrap() {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                let f: chat_model::ServerFrame = serde_json::from_str(&t).unwrap();
                assert!(matches!(f.code.as_u32(), 50005 | 50112), "{f:?}");
                answered += 1;
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(c)))) => {
                assert_eq!(u16::from(c.code), 1001);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    stopping.await.unwrap();
    let stored = app.services.chat.count(alice.id, bob.id).await.unwrap();
    assert!(answered >= stored as usize, "every stored send was answered ({answered} answers, {stored} stored)");
}
