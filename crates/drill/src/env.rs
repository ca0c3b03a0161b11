//! The drill's world: a Redis, a SecantusDB and a proxy to MySQL of its own, and the chat
//! server configured for them: one process, or several nodes of one service.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chat_testkit::proxy::FaultProxy;

use crate::procs::{DrillResult, Proc, free_port, wait_port, which};

pub struct Env {
    pub redis: Proc,
    pub redis_port: u16,
    pub mongo: Proc,
    pub mongo_port: u16,
    pub mysql: FaultProxy,
    /// The server's MySQL database (through the proxy).
    pub mysql_url: String,
    /// The nodes; the server's faults hit the first, the others keep serving.
    pub servers: Vec<Proc>,
    pub ports: Vec<u16>,
    pub notes: Vec<String>,
}

pub struct Options<'a> {
    pub server_bin: &'a Path,
    pub config: &'a Path,
    pub mysql: std::net::SocketAddr,
    pub mysql_user: &'a str,
    pub dir: PathBuf,
    /// SecantusDB started with --sync-on-commit.
    pub durable_store: bool,
    /// Messages per second each sender sends.
    pub rate: f64,
    /// Server processes (nodes of one service).
    pub nodes: usize,
}

impl Env {
    pub async fn start(o: Options<'_>) -> DrillResult<Env> {
        std::fs::create_dir_all(&o.dir)?;
        let redis_bin = which("redis-server").ok_or("redis-server is not installed")?;
        let mongo_bin = which("secantusd-rs").ok_or("secantusd-rs is not installed (scripts/stores.sh builds it)")?;
        let (redis_port, mongo_port) = (free_port()?, free_port()?);
        let ports: Vec<u16> = (0..o.nodes.max(1)).map(|_| free_port()).collect::<DrillResult<_>>()?;
        let mut redis = Proc::new(
            "redis",
            redis_bin,
            ["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .map(String::from)
                .to_vec(),
            Vec::new(),
            &o.dir,
        );
        redis.start()?;
        let storage = o.dir.join("mongo");
        std::fs::create_dir_all(&storage)?;
        let mut mongo = Proc::new(
            "mongodb",
            mongo_bin,
            vec![
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                mongo_port.to_string(),
                "--storage-path".into(),
                storage.display().to_string(),
                "--log-level".into(),
                "WARNING".into(),
            ]
            .into_iter()
            // acknowledged writes survive kill -9 only with this (measured)
            .chain(o.durable_store.then(|| "--sync-on-commit".to_string()))
            .collect(),
            Vec::new(),
            &o.dir,
        );
        mongo.start()?;
        wait_port(redis_port, Duration::from_secs(10)).await?;
        wait_port(mongo_port, Duration::from_secs(60)).await?;
        let mysql = FaultProxy::start(o.mysql).await?;
        // chat_test_…: the test script drops one a crashed run left behind
        let db = chat_testkit::unique_name();
        let mysql_url = format!("mysql://{}@{}/{db}", o.mysql_user, mysql.addr);
        let env_vars: Vec<(String, String)> = [
            ("CHAT__SERVER__SHUTDOWN_TIMEOUT_SECS", "5".into()),
            ("CHAT__MYSQL__URL", mysql_url.clone()),
            ("CHAT__MYSQL__TIMEOUT_MS", "2000".into()),
            ("CHAT__REDIS__URL", format!("redis://127.0.0.1:{redis_port}")),
            ("CHAT__REDIS__KEY_PREFIX", "drill".into()),
            ("CHAT__REDIS__TIMEOUT_MS", "1000".into()),
            ("CHAT__MONGO__URL", format!("mongodb://127.0.0.1:{mongo_port}/?directConnection=true")),
            ("CHAT__MONGO__DATABASE", "drill".into()),
            ("CHAT__MONGO__TIMEOUT_MS", "2000".into()),
            ("CHAT__WEBSOCKET__PING_INTERVAL_SECS", "2".into()),
            ("CHAT__WEBSOCKET__CLIENT_TIMEOUT_SECS", "10".into()),
            // every client logs in from 127.0.0.1
            ("CHAT__LIMITS__IP_ATTEMPTS", "100000".into()),
            // room for the chosen rate and the resends after a fault
            ("CHAT__LIMITS__SENDS_PER_SEC", ((o.rate * 3.0).ceil() as u64).max(20).to_string()),
            ("CHAT__LIMITS__SEND_BURST", ((o.rate * 10.0).ceil() as u64).max(100).to_string()),
            ("CHAT__LOG__DIR", String::new()),
            ("CHAT__LOG__LEVEL", "info".into()),
            // a killed node's users are seen gone within 2 s
            ("CHAT__CLUSTER__LEASE_TTL_SECS", "2".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let servers = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let mut vars = env_vars.clone();
                vars.push(("CHAT__SERVER__PORT".into(), port.to_string()));
                vars.push(("CHAT__CLUSTER__NODE_ID".into(), format!("node{}", i + 1)));
                let name = if i == 0 { "server".to_string() } else { format!("server-{}", i + 1) };
                Proc::new(name, o.server_bin, vec!["--config".into(), o.config.display().to_string()], vars, &o.dir)
            })
            .collect();
        let mut env = Env { redis, redis_port, mongo, mongo_port, mysql, mysql_url, servers, ports, notes: Vec::new() };
        for i in 0..env.servers.len() {
            env.start_node(i).await?;
        }
        Ok(env)
    }

    /// The first node's address (the one the server's faults hit).
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    pub fn mongo_url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.mongo_port)
    }

    /// Starts node `i` and waits until it says it is ready.
    pub async fn start_node(&mut self, i: usize) -> DrillResult<()> {
        let base = format!("http://127.0.0.1:{}", self.ports[i]);
        let server = &mut self.servers[i];
        server.start()?;
        let started = Instant::now();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        while started.elapsed() < Duration::from_secs(90) {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if !server.alive() {
                return Err(format!("{} exited:\n{}", server.name, server.log_tail(20)).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{} was not ready within 90 s:\n{}", server.name, server.log_tail(20)).into())
    }

    /// Drops the server's MySQL database (through the real server, not the proxy).
    pub async fn drop_database(&self, mysql: std::net::SocketAddr, user: &str) {
        let db = self.mysql_url.rsplit('/').next().unwrap_or_default();
        let _ = chat_dao::mysql::drop_database(&format!("mysql://{user}@{mysql}/{db}")).await;
    }
}
