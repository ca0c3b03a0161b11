//! The binary as a user runs it: configuration from files and `CHAT__` variables, start-up
//! against the real stores, a graceful stop on SIGTERM, several nodes, the admin commands and
//! the logs. The helpers below start it; each module holds a concern's tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod lifecycle;
mod logs;

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

/// Runs `chat-server admin ARGS…` on the test's stores: its exit status, stdout and stderr.
fn admin(ts: &TestStores, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = server(ts, dir).arg("admin").args(args).stdout(Stdio::piped()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}
