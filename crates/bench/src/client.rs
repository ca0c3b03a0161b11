//! The client side: users over HTTP, WebSocket connections with small buffers, process figures.

use std::{net::IpAddr, time::Duration};

use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{client::IntoClientRequest as _, protocol::WebSocketConfig},
};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
pub type Ws = WebSocketStream<TcpStream>;

/// Registers and logs in users over HTTP.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub token: String,
}

impl Http {
    pub fn new(host: &str, port: u16) -> Self {
        Http { base: format!("http://{host}:{port}"), client: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> BenchResult<Value> {
        let res = self.client.post(format!("{}{path}", self.base)).json(&body).send().await?;
        let status = res.status();
        let v: Value = res.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {v}").into());
        }
        Ok(v)
    }

    /// A POST with `user`'s bearer token; the envelope, or the status and body as the error.
    pub async fn post_auth(&self, path: &str, body: Value, token: &str) -> BenchResult<Value> {
        let res = self.client.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body).send().await?;
        let status = res.status();
        let v: Value = res.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {v}").into());
        }
        Ok(v)
    }

    /// Registers `name` (or finds it taken) and logs in.
    pub async fn user(&self, name: &str) -> BenchResult<User> {
        let password = format!("{name}-bench-pw");
        let _ =
            self.post("/user/register", json!({"nick_name": "bench", "user_name": name, "password": password})).await;
        let v = self.post("/user/login", json!({"user_name": name, "password": password})).await?;
        let id = v["data"]["user"]["id"].as_u64().ok_or("login: no user id")?;
        let token = v["data"]["token"].as_str().ok_or("login: no token")?.to_string();
        Ok(User { id, token })
    }

    /// Registers `names` (without logging in), `parallel` at a time.
    pub async fn register_many(&self, names: &[String], parallel: usize) -> BenchResult<()> {
        use futures_util::StreamExt as _;
        futures_util::stream::iter(names.iter().cloned())
            .map(|name| {
                let http = self.clone();
                async move {
                    let password = format!("{name}-bench-pw");
                    let body = json!({"nick_name": "bench", "user_name": name, "password": password});
                    let _ = http.post("/user/register", body).await;
                }
            })
            .buffer_unordered(parallel.max(1))
            .collect::<Vec<()>>()
            .await;
        Ok(())
    }

    /// Many users, `parallel` at a time (argon2 makes logins CPU-heavy on the server).
    pub async fn users(&self, prefix: &str, n: usize, parallel: usize) -> BenchResult<Vec<User>> {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        futures_util::stream::iter((0..n).map(|i| format!("{prefix}{i}")))
            .map(|name| {
                let http = self.clone();
                async move { http.user(&name).await }
            })
            .buffered(parallel.max(1))
            .try_collect()
            .await
    }
}

/// Client buffers stay small: tungstenite zero-fills its whole read buffer before each read.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0).max_message_size(Some(1 << 20))
}

/// Opens `/ws?toUid=peer` as `user` (peer 0: the device connection `/ws`), optionally from a
/// given loopback source address.
pub async fn connect(host: &str, port: u16, src: Option<IpAddr>, token: &str, peer: u64) -> BenchResult<Ws> {
    let addr: std::net::SocketAddr = format!("{host}:{port}").parse()?;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = src {
        socket.bind(std::net::SocketAddr::new(ip, 0))?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr)).await??;
    stream.set_nodelay(true)?;
    let url = if peer == 0 { format!("ws://{host}:{port}/ws") } else { format!("ws://{host}:{port}/ws?toUid={peer}") };
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("Authorization", format!("Bearer {token}").parse()?);
    let (ws, _) =
        tokio::time::timeout(Duration::from_secs(10), client_async_with_config(req, stream, Some(ws_config())))
            .await??;
    Ok(ws)
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of a process, seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces: fields count from after its closing parenthesis
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Nanoseconds since the Unix epoch (send times travel inside the message content).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
