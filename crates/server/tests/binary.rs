//! The binary as a user runs it: configuration from files and `CHAT__` variables, start-up
//! against the real stores, and a graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use chat_testkit::TestStores;

fn config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
}

/// The binary with the test's own stores, configured through `CHAT__` variables only.
fn server(ts: &TestStores, work_dir: &Path) -> Command {
    let s = &ts.settings;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    cmd.arg("--config")
        .arg(config_dir())
        .current_dir(work_dir)
        .env("CHAT__SERVER__PORT", "0")
        .env("CHAT__SERVER__WORKERS", "1")
        .env("CHAT__MYSQL__URL", &s.mysql.url)
        .env("CHAT__REDIS__URL", &s.redis.url)
        .env("CHAT__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("CHAT__MONGO__URL", &s.mongo.url)
        .env("CHAT__MONGO__DATABASE", &s.mongo.database)
        .env_remove("APP_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_bad_setting_from_the_environment_stops_start_up_with_a_clear_error() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let out = server(&ts, &dir).env("CHAT__LOG__LEVEL", "loud").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loud"), "{err}");
    let out = server(&ts, &dir).env("CHAT__SERVER__PROT", "1").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prot"), "an unknown key is an error");
}

/// The running server and its working folder: killed and removed however the test ends.
struct Running {
    child: Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the binary and waits for the line that says where it listens; the running process
/// and its port.
fn start(mut cmd: Command, dir: &Path) -> (Running, u16) {
    let mut running = Running { child: cmd.spawn().unwrap(), dir: dir.to_path_buf() };
    let stderr = running.child.stderr.take().unwrap();
    // the terminal log says where it listens: "... listening, addr: 127.0.0.1:PORT ..."
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("a listening line");
        assert!(!line.contains("password"), "{line}");
        let port = line
            .split("addr: 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u16>().ok());
        if let Some(port) = port {
            // keep draining the log, so the server never blocks on a full pipe
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (running, port);
        }
    }
}

#[tokio::test]
async fn starts_serves_and_stops_gracefully_on_sigterm() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let (mut running, port) = start(server(&ts, &dir), &dir);
    let child = &mut running.child;
    let base = format!("http://127.0.0.1:{port}");
    let ping: serde_json::Value = reqwest::get(format!("{base}/ping")).await.unwrap().json().await.unwrap();
    assert_eq!(ping["data"], "SUCCESS");
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status().as_u16(), 200);

    // the JSON log file was made in the working folder's log/
    let log = std::fs::read_to_string(dir.join("log/chat.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"msg\":\"listening\"")), "{log}");

    let kill = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(kill.success());
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.expect("stopped within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// A WebSocket to a node.
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn device(port: u16, token: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/ws?token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(frame(&mut ws).await["code"], 50002);
    ws
}

/// The next text frame, parsed (10 s at most).
async fn frame(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt as _;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame in time");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg.expect("open").expect("a frame") {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Sends a frame and returns its reply (events and pushes skipped).
async fn ask(ws: &mut Ws, v: serde_json::Value) -> serde_json::Value {
    use futures_util::SinkExt as _;
    ws.send(tokio_tungstenite::tungstenite::Message::text(v.to_string())).await.unwrap();
    loop {
        let f = frame(ws).await;
        if !matches!(f["code"].as_u64(), Some(50001 | 50010..=50012)) {
            return f;
        }
    }
}

async fn user(http: &reqwest::Client, base: &str, name: &str) -> (u64, String) {
    let body = serde_json::json!({"nick_name": "Nick", "user_name": name, "password": "password-1"});
    let reg: serde_json::Value =
        http.post(format!("{base}/user/register")).json(&body).send().await.unwrap().json().await.unwrap();
    let login = serde_json::json!({"user_name": name, "password": "password-1"});
    let res: serde_json::Value =
        http.post(format!("{base}/user/login")).json(&login).send().await.unwrap().json().await.unwrap();
    (reg["data"]["id"].as_u64().unwrap(), res["data"]["token"].as_str().unwrap().to_string())
}

/// A node of a two-node service on the test's stores: its lease lapses 2 s after it stops
/// renewing it, and its heartbeat is slow (a minute), so what is seen within seconds is the
/// lease's doing.
fn node(ts: &TestStores, name: &str) -> (Running, u16) {
    let dir = std::env::temp_dir().join(format!("{}-{name}", ts.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = server(ts, &dir);
    cmd.env("CHAT__CLUSTER__NODE_ID", name)
        .env("CHAT__CLUSTER__LEASE_TTL_SECS", "2")
        .env("CHAT__WEBSOCKET__PING_INTERVAL_SECS", "60");
    start(cmd, &dir)
}

#[tokio::test]
async fn a_node_killed_under_load_is_seen_gone_within_its_lease_and_the_other_serves_on() {
    let ts = TestStores::new();
    let (_one, p1) = node(&ts, "node1");
    let (mut two, p2) = node(&ts, "node2");
    let http = reqwest::Client::new();
    let base1 = format!("http://127.0.0.1:{p1}");
    let (alice, alice_token) = user(&http, &base1, "alice_01").await;
    let (bob, bob_token) = user(&http, &base1, "bob_0001").await;
    let mut a = device(p1, &alice_token).await;
    let mut b = device(p2, &bob_token).await;
    assert_eq!(ask(&mut a, serde_json::json!({"type": 1, "to": bob, "content": "hi"})).await["code"], 50004);
    assert_eq!(ask(&mut b, serde_json::json!({"type": 1, "to": alice, "content": "hello"})).await["code"], 50004);

    // alice keeps sending while node2, which holds bob, is killed (and started again at once
    // under its name: a new life, which inherits nothing of the old one's)
    let mut acked = vec![1_i64, 2];
    let kill_after = 20;
    for k in 0..60 {
        if k == kill_after {
            two.child.kill().unwrap();
            two.child.wait().unwrap();
            two = node(&ts, "node2").0;
        }
        let reply = ask(
            &mut a,
            serde_json::json!({"type": 1, "to": bob, "content": format!("m{k}"), "client_msg_id": format!("m{k}")}),
        )
        .await;
        let code = reply["code"].as_u64().unwrap();
        assert!(code == 50004 || code == 50005, "node1 serves on: {reply}");
        acked.push(reply["message"]["seq"].as_i64().unwrap());
        if k > kill_after && code == 50005 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(acked.len() < 61, "bob was seen gone within the 3 s the sends took after the kill");
    drop(b);
    // bob's peers hear he went offline (the node that claimed node2's lapsed lease told them)
    let mut offline = None;
    for _ in 0..50 {
        let f = frame(&mut a).await;
        if f["code"] == 50012 && f["user_id"] == bob {
            offline = Some(f);
            break;
        }
    }
    assert_eq!(offline.expect("a presence event")["online"], false);
    let list: serde_json::Value = http
        .get(format!("{base1}/conversations"))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["online"], false, "{list}");

    // bob comes back on node1 and catches up: every acknowledged message is there, once
    b = device(p1, &bob_token).await;
    let caught = ask(&mut b, serde_json::json!({"type": 4, "to": alice, "after_seq": 0, "limit": 500})).await;
    let seqs: Vec<i64> = caught["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, acked, "nothing acknowledged was lost, nothing is there twice");
    drop(two);
}
