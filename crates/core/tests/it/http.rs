use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn ping_health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get("/ping").await, (200, json!({"status": 200, "msg": "ok", "data": "SUCCESS"})));
    assert_eq!(app.get("/healthz").await.0, 200);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"mysql": "ok", "redis": "ok", "mongodb": "ok", "pubsub": "ok"}));
    let (status, body) = app.get("/no/such/route").await;
    assert_eq!((status, body["status"].as_u64()), (404, Some(404)));
}

#[tokio::test]
async fn readiness_reports_a_store_that_does_not_answer() {
    let app = crate::spawn_with(|s| {
        s.redis.url = "redis://127.0.0.1:1".into();
        s.redis.timeout_ms = 300;
    })
    .await;
    // Redis down is degraded, not unready: chats go on without it
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"mysql": "ok", "redis": "down", "mongodb": "ok", "pubsub": "down"}));
    // Redis only holds caches and counters: logging in and using the session still work
    let (status, body) = app.post("/user/login", json!({"user_name": "nobody_1", "password": "whatever1"}), None).await;
    assert_eq!(status, 401, "{body}");
    app.user_without_login("alice_01").await;
    let (status, body) =
        app.post("/user/login", json!({"user_name": "alice_01", "password": "alice_01-password"}), None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["token"].as_str().unwrap();
    assert_eq!(app.get_auth("/user/me", Some(token)).await.0, 200);
}

impl crate::TestApp {
    async fn user_without_login(&self, name: &str) {
        let (status, _) = self
            .post(
                "/user/register",
                json!({"nick_name": "Nick", "user_name": name, "password": format!("{name}-password")}),
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn register_rules_conflicts_and_malformed_bodies() {
    let app = spawn_app().await;
    let ok = json!({"nick_name": "Alice", "user_name": "alice_01", "password": "password-1"});
    let (status, body) = app.post("/user/register", ok.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["id"].as_u64().unwrap() > 0);
    let (status, body) = app.post("/user/register", ok, None).await;
    assert_eq!((status, body["status"].as_u64()), (409, Some(409)), "{body}");
    for (body, field) in [
        (json!({"nick_name": "A", "user_name": "bob_0001", "password": "password-1"}), "nick_name"),
        (json!({"nick_name": "Bob", "user_name": "bob!", "password": "password-1"}), "user_name"),
        (json!({"nick_name": "Bob", "user_name": "bob_0001", "password": "short"}), "password"),
    ] {
        let (status, reply) = app.post("/user/register", body, None).await;
        assert_eq!(status, 400, "{reply}");
        assert!(reply["error"].as_str().unwrap().starts_with(field), "{reply}");
    }
    let res = app
        .http
        .post(format!("{}/user/register", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], 400);
    let (status, _) = app.post("/user/register", json!({"nick_name": "Bob"}), None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn login_never_returns_secrets_and_logout_ends_the_session() {
    let app = spawn_app().await;
    let alice = app.user("alice_01").await;
    let (status, body) =
        app.post("/user/login", json!({"user_name": "alice_01", "password": "alice_01-password"}), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["expires_in"], 604800);
    assert_eq!(body["data"]["user"], json!({"id": alice.id, "user_name": "alice_01", "nick_name": "Nick"}));
    let text = body.to_string();
    assert!(!text.contains("password") && !text.contains("argon2"), "{text}");

    let wrong = app.post("/user/login", json!({"user_name": "alice_01", "password": "not-it-at-all"}), None).await;
    let unknown =
        app.post("/user/login", json!({"user_name": "nobody_01", "password": "alice_01-password"}), None).await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, unknown, "the same 401 for both");

    assert_eq!(app.post("/user/logout", json!({}), None).await.0, 401);
    assert_eq!(app.post("/user/logout", json!({}), Some("made-up")).await.0, 401);
    assert_eq!(app.post("/user/logout", json!({}), Some(&alice.token)).await.0, 200);
    assert_eq!(app.post("/user/logout", json!({}), Some(&alice.token)).await.0, 401, "gone at once");
}

impl crate::TestApp {
    pub async fn get_auth(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }
}

#[tokio::test]
async fn me_and_lookup_need_a_token_and_show_only_public_fields() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let (status, body) = app.get_auth("/user/me", Some(&alice.token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"id": alice.id, "user_name": "alice_01", "nick_name": "Nick"}));
    let (status, body) = app.get_auth("/user/lookup?user_name=BOB_0001", Some(&alice.token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"id": bob.id, "user_name": "bob_0001", "nick_name": "Nick"}));
    assert_eq!(app.get_auth("/user/lookup?user_name=nobody_1", Some(&alice.token)).await.0, 404);
    assert_eq!(app.get_auth("/user/lookup", Some(&alice.token)).await.0, 400);
    assert_eq!(app.get_auth("/user/me", None).await.0, 401);
    assert_eq!(app.get_auth("/user/lookup?user_name=bob_0001", None).await.0, 401);
    assert_eq!(app.get_auth("/conversations", Some("made-up")).await.0, 401);
}

#[tokio::test]
async fn conversations_list_peers_last_message_and_unread_newest_first() {
    use chat_model::ReplyCode;
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    assert_eq!(app.get_auth("/conversations", Some(&alice.token)).await.1["data"], json!([]));

    let mut b = app.ws(&bob, &alice).await;
    assert_eq!(b.ask(json!({"type": 1, "content": "one"})).await.code, ReplyCode::StoredOffline);
    assert_eq!(b.ask(json!({"type": 1, "content": "two"})).await.code, ReplyCode::StoredOffline);
    let mut c = app.ws(&carol, &alice).await;
    assert_eq!(c.ask(json!({"type": 1, "content": "from carol"})).await.code, ReplyCode::StoredOffline);

    // the summaries are part of the commit: the list has them as soon as the sends are answered
    let (status, body) = app.get_auth("/conversations", Some(&alice.token)).await;
    assert_eq!(status, 200, "{body}");
    let list = body["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["peer"]["user_name"], "carol_01", "newest first");
    assert_eq!(list[0]["unread"], 1);
    assert_eq!(list[0]["last_message"]["content"], "from carol");
    assert_eq!(list[1]["peer"], json!({"id": bob.id, "user_name": "bob_0001", "nick_name": "Nick"}));
    assert_eq!(list[1]["unread"], 2);
    assert_eq!(list[1]["last_message"]["seq"], 2);

    // alice reads bob's messages: the count drops to 0; bob's own list shows nothing unread
    let mut a = app.ws(&alice, &bob).await;
    assert_eq!(a.ask(json!({"type": 3})).await.messages.unwrap().len(), 2);
    // marked read a moment after they were written
    let list = chat_testkit::poll_until(
        std::time::Duration::from_secs(5),
        || async { app.get_auth("/conversations", Some(&alice.token)).await.1["data"].clone() },
        |list| list[1]["unread"] == 0,
    )
    .await;
    assert_eq!(list[1]["unread"], 0);
    assert_eq!(list[1]["last_message"]["read"], true);
    let bobs = app.get_auth("/conversations", Some(&bob.token)).await.1["data"].clone();
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert_eq!(bobs[0]["peer"]["user_name"], "alice_01");
    assert_eq!(bobs[0]["unread"], 0);
}

#[tokio::test]
async fn the_web_client_is_served_at_the_root() {
    let app = spawn_app().await;
    let res = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert!(res.text().await.unwrap().to_lowercase().contains("<!doctype html>"));
    assert_eq!(app.http.get(format!("{}/assets/nope.js", app.base)).send().await.unwrap().status().as_u16(), 404);
}
