//! `idle`: many authenticated, idle connections held with heartbeats. The client sockets are
//! spread over worker processes (each process may hold 20,000 files here) and loopback
//! source addresses. The server's resident memory is sampled until it settles before the
//! connections and again after the hold; the per-connection figure is refused (with the reason)
//! when either sample did not settle or the memory went down (the server gave back more than
//! the connections took: measure on a fresh server, as `scripts/bench.sh` does).
//!
//! A worker (`chat-bench idle-worker`) reads `token peer` lines from a file, connects them
//! all, prints `READY <ok> <failed> <secs>`, keeps reading (which answers the server's
//! pings), and on `CHECK` from stdin prints `GOT <n>`: how many connections received a
//! pushed message since they connected; on `EXIT` it closes them and leaves.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Ctx,
    client::{BenchResult, User, connect, rss_kib},
    measure::{Progress, Settled, kib_per_unit, settled_rss},
};

/// How long a memory sample may take to settle.
const SETTLE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleResult {
    pub connections: usize,
    pub failed: usize,
    pub setup_secs: f64,
    pub setup_per_s: f64,
    pub held_secs: f64,
    /// whether the server had served nothing before (`--idle-port`'s server)
    pub fresh_server: bool,
    pub server_rss_before: Option<Settled>,
    pub server_rss_after: Option<Settled>,
    pub server_kib_per_conn: Option<f64>,
    /// why there is no per-connection figure
    pub per_conn_refused: Option<String>,
    pub got_message_at_end: usize,
}

/// Connections per worker process (each process may hold 20,000 files here).
pub const PER_WORKER: usize = 9_000;

/// Idle connections held by worker processes, until stopped.
pub struct Fleet {
    children: Vec<(
        tokio::process::Child,
        tokio::process::ChildStdin,
        tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    )>,
    dir: std::path::PathBuf,
    groups: usize,
    pub ok: usize,
    pub failed: usize,
    pub setup_secs: f64,
}

impl Fleet {
    /// Connects `conns` sockets, holder `i % groups` to its peer, spread over worker processes.
    /// `device`: device connections (`/ws`) instead of sockets pinned to the peer.
    pub async fn start(ctx: &Ctx, holders: &[User], peers: &[User], conns: usize, device: bool) -> BenchResult<Fleet> {
        let groups = holders.len().min(peers.len()).max(1);
        let workers = conns.div_ceil(PER_WORKER).max(1);
        let dir = std::env::temp_dir().join(format!("chat-bench-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let exe = std::env::current_exe()?;
        let started = Instant::now();
        let mut children = Vec::new();
        for w in 0..workers {
            let lines: String = (w * PER_WORKER..((w + 1) * PER_WORKER).min(conns))
                .map(|i| format!("{} {}\n", holders[i % groups].token, if device { 0 } else { peers[i % groups].id }))
                .collect();
            let spec = dir.join(format!("worker-{w}.txt"));
            std::fs::write(&spec, lines)?;
            let mut child = tokio::process::Command::new(&exe)
                .arg("idle-worker")
                .arg("--host")
                .arg(&ctx.host)
                .arg("--port")
                .arg(ctx.port.to_string())
                .arg("--src")
                .arg(format!("127.0.0.{}", 2 + w))
                .arg("--spec")
                .arg(&spec)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = BufReader::new(child.stdout.take().ok_or("worker stdout")?).lines();
            let stdin = child.stdin.take().ok_or("worker stdin")?;
            children.push((child, stdin, stdout));
        }
        let (mut ok, mut failed) = (0usize, 0usize);
        for (_, _, out) in children.iter_mut() {
            let line = out.next_line().await?.ok_or("worker ended")?;
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.first() != Some(&"READY") {
                return Err(format!("worker: {line}").into());
            }
            ok += f.get(1).and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
            failed += f.get(2).and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
        }
        Ok(Fleet { children, dir, groups, ok, failed, setup_secs: started.elapsed().as_secs_f64() })
    }

    /// Every holder's peer writes once: how many held connections received it.
    pub async fn wake(&mut self, ctx: &Ctx, holders: &[User], peers: &[User]) -> BenchResult<usize> {
        for g in 0..self.groups {
            let mut ws = connect(&ctx.host, ctx.port, None, &peers[g].token, holders[g].id).await?;
            let _ = ws.next().await;
            ws.send(Message::text(format!(r#"{{"type":1,"content":"wake up {g}"}}"#))).await?;
            let _ = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
            let _ = ws.close(None).await;
        }
        let mut got = 0;
        for (_, stdin, out) in self.children.iter_mut() {
            stdin.write_all(b"CHECK\n").await?;
            let line = out.next_line().await?.ok_or("worker ended")?;
            got += line.strip_prefix("GOT ").and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(0);
        }
        Ok(got)
    }

    /// Closes every connection and ends the workers.
    pub async fn stop(self) {
        for (mut child, mut stdin, _) in self.children {
            let _ = stdin.write_all(b"EXIT\n").await;
            let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn run(
    ctx: &Ctx,
    holders: &[User],
    peers: &[User],
    conns: usize,
    hold: Duration,
    device: bool,
    fresh_server: bool,
) -> BenchResult<IdleResult> {
    let settle = async |pid: Option<u32>| match pid {
        Some(pid) => settled_rss(pid, SETTLE).await,
        None => None,
    };
    let rss_before = settle(ctx.server_pid).await;
    let mut fleet = Fleet::start(ctx, holders, peers, conns, device).await?;
    let held = Instant::now();
    {
        let (pid, ok) = (ctx.server_pid, fleet.ok);
        let _progress = Progress::every_second("idle", move |_| {
            let rss = pid.and_then(rss_kib).map(|k| format!("{k} KiB")).unwrap_or_else(|| "n/a".into());
            format!("holding {ok} connections; server RSS {rss}")
        });
        tokio::time::sleep(hold).await;
    }
    let rss_after = settle(ctx.server_pid).await;
    let per_conn = kib_per_unit(rss_before, rss_after, fleet.ok);
    let got = fleet.wake(ctx, holders, peers).await?;
    let held_secs = held.elapsed().as_secs_f64();
    let (ok, failed, setup_secs) = (fleet.ok, fleet.failed, fleet.setup_secs);
    fleet.stop().await;
    Ok(IdleResult {
        connections: ok,
        failed,
        setup_secs,
        setup_per_s: ok as f64 / setup_secs,
        held_secs,
        fresh_server,
        server_rss_before: rss_before,
        server_rss_after: rss_after,
        server_kib_per_conn: per_conn.as_ref().ok().copied(),
        per_conn_refused: per_conn.err(),
        got_message_at_end: got,
    })
}

/// The worker process.
pub async fn worker(host: String, port: u16, src: Option<IpAddr>, spec: std::path::PathBuf) -> BenchResult<()> {
    let text = std::fs::read_to_string(spec)?;
    let targets: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| {
            let (t, p) = l.split_once(' ')?;
            Some((t.to_string(), p.trim().parse().ok()?))
        })
        .collect();
    let started = Instant::now();
    let got = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let incoming: Arc<str> = format!("\"code\":{}", chat_model::ReplyCode::Incoming.as_u32()).into();
    let mut tasks = Vec::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(1024);
    for (token, peer) in targets.iter().cloned() {
        let (host, gate, got, ready_tx, incoming) =
            (host.clone(), gate.clone(), got.clone(), ready_tx.clone(), incoming.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire().await;
            let ws = connect(&host, port, src, &token, peer).await;
            drop(permit);
            let _ = ready_tx.send(ws.is_ok()).await;
            drop(ready_tx);
            let Ok(mut ws) = ws else { return };
            let mut counted = false;
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(t) = msg
                    && !counted
                    && t.contains(&*incoming)
                {
                    counted = true;
                    got.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    drop(ready_tx);
    let mut ok = 0;
    for _ in 0..targets.len() {
        let Some(r) = ready_rx.recv().await else { break };
        if r {
            ok += 1
        } else {
            failed.fetch_add(1, Relaxed);
        }
    }
    let mut out = tokio::io::stdout();
    out.write_all(format!("READY {ok} {} {:.2}\n", failed.load(Relaxed), started.elapsed().as_secs_f64()).as_bytes())
        .await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "CHECK" => {
                let deadline = Instant::now() + Duration::from_secs(30);
                while got.load(Relaxed) < ok && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                out.write_all(format!("GOT {}\n", got.load(Relaxed)).as_bytes()).await?;
                out.flush().await?;
            }
            "EXIT" => break,
            _ => {}
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
