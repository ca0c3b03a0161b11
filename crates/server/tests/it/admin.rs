//! `chat-server admin …` against a running server on the same stores, as an operator uses it.

use super::*;

/// Waits for a socket's 50108 (its session ended), skipping other frames.
async fn ended(ws: &mut Ws) {
    loop {
        if frame(ws).await["code"] == 50108 {
            return;
        }
    }
}

#[tokio::test]
async fn disable_enable_delete_sessions_and_stats_work_on_a_running_server_at_once() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    // a slow heartbeat: what closes a socket within seconds is the command's doing
    let mut cmd = server(&ts, &dir);
    cmd.env("CHAT__WEBSOCKET__PING_INTERVAL_SECS", "60");
    let (_running, port) = start(cmd, &dir);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let (alice, alice_token) = user(&http, &base, "alice_adm").await;
    let (bob, _) = user(&http, &base, "bob_adm").await;
    let me = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move { http.get(format!("{base}/user/me")).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    let login = |name: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = serde_json::json!({"user_name": name, "password": "password-1"});
            let res = http.post(format!("{base}/user/login")).json(&body).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };

    // a message, for the stats
    let mut ws = device(port, &alice_token).await;
    let sent = ask(&mut ws, serde_json::json!({"type": 1, "to": bob, "content": "hello"})).await;
    assert!(matches!(sent["code"].as_u64(), Some(50004 | 50005)), "{sent}");

    let (ok, out, _) = admin(&ts, &dir, &["sessions", "alice_adm"]);
    assert!(ok && out.contains("1 live session(s)"), "{out}");
    // with JSON logs on stdout configured, the command's stdout is still only its answer
    let out = server(&ts, &dir)
        .env("CHAT__LOG__FORMAT", "json")
        .args(["admin", "sessions", "alice_adm"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("SESSION") && !text.contains("\"msg\""), "{text}");

    // disable: the socket closes at once, the token stops working, the password too
    let (ok, out, err) = admin(&ts, &dir, &["disable-user", "alice_adm"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("user alice_adm (id {alice}): disabled; sessions ended: 1")), "{out}");
    tokio::time::timeout(Duration::from_secs(5), ended(&mut ws)).await.expect("the socket told at once");
    assert_eq!(me(alice_token.clone()).await, 401);
    let (status, body) = login("alice_adm").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_credentials")), "{body}");
    let (_, out, _) = admin(&ts, &dir, &["disable-user", "alice_adm"]);
    assert!(out.contains("already disabled"), "{out}");

    // enable: a new login works; end-sessions ends it
    let (ok, out, _) = admin(&ts, &dir, &["enable-user", "alice_adm"]);
    assert!(ok && out.contains("enabled"), "{out}");
    let (status, body) = login("alice_adm").await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(me(token.clone()).await, 200);
    let (_, out, _) = admin(&ts, &dir, &["sessions", "alice_adm"]);
    let id = out.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    assert_eq!(id.len(), 16, "{out}");
    let (ok, _, err) = admin(&ts, &dir, &["end-sessions", "alice_adm", "--session", "00000000"]);
    assert!(!ok && err.contains("no live session has that id"), "{err}");
    assert_eq!(me(token.clone()).await, 200, "a refused command changes nothing");
    let (ok, out, _) = admin(&ts, &dir, &["end-sessions", "alice_adm", "--session", &id[..10]]);
    assert!(ok && out.contains("sessions ended: 1"), "{out}");
    assert_eq!(me(token).await, 401);

    // stats of the direct conversation, and of a group
    let (ok, out, err) = admin(&ts, &dir, &["conversation-stats", "alice_adm", "bob_adm"]);
    assert!(ok, "{err}");
    let lo = alice.min(bob);
    assert!(out.contains(&format!("conversation {lo}:")), "{out}");
    assert!(out.contains("messages stored: 1") && out.contains("last seq: 1"), "{out}");
    let bob_line = out.lines().find(|l| l.contains("bob_adm")).unwrap();
    assert_eq!(bob_line.split_whitespace().collect::<Vec<_>>(), [bob.to_string().as_str(), "bob_adm", "0", "1"]);
    let (_, token) = {
        let (status, body) = login("alice_adm").await;
        assert_eq!(status, 200);
        (status, body["data"]["token"].as_str().unwrap().to_string())
    };
    let group: serde_json::Value = http
        .post(format!("{base}/groups"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "ops", "members": [bob]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = group["data"]["id"].as_u64().unwrap().to_string();
    let (ok, out, err) = admin(&ts, &dir, &["conversation-stats", "--group", &gid]);
    assert!(
        ok && out.contains("group: ops (2 members)") && out.contains(&format!("conversation g:{gid}")),
        "{out}{err}"
    );

    // delete: bob cannot log in, and his name stays taken
    let (ok, out, _) = admin(&ts, &dir, &["delete-user", "bob_adm"]);
    assert!(ok && out.contains("deleted"), "{out}");
    assert_eq!(login("bob_adm").await.0, 401);
    let again = serde_json::json!({"nick_name": "Bob", "user_name": "bob_adm", "password": "password-1"});
    let res = http.post(format!("{base}/user/register")).json(&again).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 409);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!((body["code"].as_str(), body["field"].as_str()), (Some("user_name_taken"), Some("user_name")), "{body}");

    // an unknown user is refused with a reason
    let (ok, _, err) = admin(&ts, &dir, &["disable-user", "nobody_here"]);
    assert!(!ok && err.contains("no such user"), "{err}");
}
