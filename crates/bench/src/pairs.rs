//! `pairs`: N pairs of users chatting both ways, both online. Each sender keeps at most
//! `window` sends unacknowledged, and (with a rate) paces itself. The receiver measures
//! send → deliver latency from the send time carried in the content.
//!
//! With `peers` > 0, each of the 2N users holds one device connection (`/ws`) and talks with
//! `peers` others at once (its neighbours on a ring), sending to each in turn.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use chat_model::ReplyCode;
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Ctx,
    client::{BenchResult, User, connect, now_ns},
    measure::{CpuClock, Progress},
};

#[derive(Debug, Clone)]
pub struct PairsOpts {
    pub pairs: usize,
    /// Offered messages per second over all senders; None: as fast as acknowledged.
    pub rate: Option<f64>,
    pub window: usize,
    pub duration: Duration,
    pub size: usize,
    /// Device connections, each user talking with this many peers (even); 0: one `?toUid=`
    /// socket per side of each pair.
    pub peers: usize,
    /// The nodes' ports, when the server is several nodes: pair i's first side connects to
    /// node i, its second side to node i + 1 (each pair across two nodes); empty: every
    /// connection to the context's port.
    pub nodes: Vec<u16>,
}

impl PairsOpts {
    fn port(&self, ctx: &Ctx, k: usize) -> u16 {
        if self.nodes.is_empty() { ctx.port } else { self.nodes[k % self.nodes.len()] }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairsResult {
    pub pairs: usize,
    /// 0: a socket per conversation; else device connections with this many peers each.
    pub device_peers: usize,
    pub window: usize,
    pub offered_per_s: Option<f64>,
    pub secs: f64,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub refused: u64,
    pub errors: u64,
    pub lost: u64,
    pub acked_per_s: f64,
    pub delivered_per_s: f64,
    pub deliver_us: Percentiles,
    pub ack_us: Percentiles,
    pub stored_in_mongo: u64,
    /// None: no server process to read (e.g. several nodes: see their own figures)
    pub server_cpu_s: Option<f64>,
    pub bench_cpu_s: Option<f64>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Microseconds, up to 100 s, 3 significant digits.
#[allow(clippy::expect_used)] // constant, valid bounds
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

#[derive(Default)]
struct Side {
    sent: AtomicU64,
    acked: AtomicU64,
    /// messages from the peer received here
    delivered: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
}

/// The part of a server frame the benchmark reads (borrowed from the text: no copies).
#[derive(Deserialize)]
pub struct Frame<'a> {
    pub code: ReplyCode,
    #[serde(borrow)]
    pub message: Option<FrameMessage<'a>>,
}

#[derive(Deserialize)]
pub struct FrameMessage<'a> {
    pub from: u64,
    #[serde(borrow)]
    pub content: &'a str,
}

/// The send time a benchmark message carries first in its content (ns since the epoch).
pub fn sent_at(content: &str) -> Option<u64> {
    content.split(' ').next()?.parse().ok()
}

pub async fn run(ctx: &Ctx, users: &[User], opts: &PairsOpts) -> BenchResult<PairsResult> {
    let pairs = opts.pairs.min(users.len() / 2);
    let senders = pairs * 2;
    let half = (opts.peers / 2).min(senders.saturating_sub(1) / 2);
    let mut conns = Vec::with_capacity(senders);
    // each connection: its user, the peers it sends to in turn, whether frames name them
    let mut convs: Vec<String> = Vec::new();
    if half == 0 {
        for i in 0..pairs {
            let (a, b) = (&users[2 * i], &users[2 * i + 1]);
            let (pa, pb) = (opts.port(ctx, i), opts.port(ctx, i + 1));
            conns.push((a.clone(), vec![b.id], false, connect(&ctx.host, pa, None, &a.token, b.id).await?));
            conns.push((b.clone(), vec![a.id], false, connect(&ctx.host, pb, None, &b.token, a.id).await?));
            convs.push(chat_model::conversation_id(a.id, b.id));
        }
    } else {
        for i in 0..senders {
            let ring = |k: usize| users[k % senders].id;
            let peers: Vec<u64> = (1..=half).flat_map(|d| [ring(i + d), ring(i + senders - d)]).collect();
            let port = opts.port(ctx, i);
            conns.push((users[i].clone(), peers, true, connect(&ctx.host, port, None, &users[i].token, 0).await?));
            for d in 1..=half {
                convs.push(chat_model::conversation_id(users[i].id, ring(i + d)));
            }
        }
        convs.sort();
        convs.dedup();
    }
    let (server_cpu, bench_cpu) = (CpuClock::start(ctx.server_pid), CpuClock::of_self());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + opts.duration;
    let pad = "x".repeat(opts.size.saturating_sub(20));
    let interval = opts.rate.map(|r| Duration::from_secs_f64(senders as f64 / r.max(0.001)));
    let mut tasks = Vec::new();
    let mut sides = Vec::new();
    for (n, (user, peers, device, mut ws)) in conns.into_iter().enumerate() {
        if device {
            // the welcome
            let _ = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        }
        let side = Arc::new(Side::default());
        sides.push(side.clone());
        let (mut sink, mut stream) = ws.split();
        let window = Arc::new(Semaphore::new(opts.window.max(1)));
        let (pad, stop) = (pad.clone(), stop.clone());
        let (send_side, read_side, read_window) = (side.clone(), side.clone(), window.clone());
        let me = user.id;
        let sender = tokio::spawn(async move {
            let mut ticker = interval.map(|iv| {
                let mut t =
                    tokio::time::interval_at(tokio::time::Instant::now() + iv.mul_f64((n % 97) as f64 / 97.0), iv);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut k: u64 = 0;
            while Instant::now() < deadline {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let Ok(permit) = tokio::time::timeout(Duration::from_millis(200), window.acquire()).await else {
                    continue;
                };
                let Ok(permit) = permit else { break };
                permit.forget();
                k += 1;
                let frame = if device {
                    let to = peers[k as usize % peers.len()];
                    format!(r#"{{"type":1,"to":{to},"content":"{} {pad}","client_msg_id":"{me}-{k}"}}"#, now_ns())
                } else {
                    format!(r#"{{"type":1,"content":"{} {pad}","client_msg_id":"{me}-{k}"}}"#, now_ns())
                };
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
                send_side.sent.fetch_add(1, Relaxed);
            }
            sink
        });
        let reader = tokio::spawn(async move {
            let (mut deliver, mut ack) = (histogram(), histogram());
            loop {
                let wait = if stop.load(Relaxed) { Duration::from_secs(2) } else { Duration::from_secs(30) };
                let msg = match tokio::time::timeout(wait, stream.next()).await {
                    Ok(Some(Ok(m))) => m,
                    _ => break,
                };
                let Message::Text(text) = msg else { continue };
                let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
                let now = now_ns();
                let latency = |m: &FrameMessage| sent_at(m.content).map(|t| now.saturating_sub(t) / 1000);
                match frame.code {
                    ReplyCode::Delivered | ReplyCode::StoredOffline => {
                        read_side.acked.fetch_add(1, Relaxed);
                        read_window.add_permits(1);
                        if let Some(us) = frame.message.as_ref().and_then(latency) {
                            let _ = ack.record(us.max(1));
                        }
                    }
                    ReplyCode::Incoming => {
                        if let Some(m) = frame.message.as_ref().filter(|m| m.from != me) {
                            read_side.delivered.fetch_add(1, Relaxed);
                            if let Some(us) = latency(m) {
                                let _ = deliver.record(us.max(1));
                            }
                        }
                    }
                    ReplyCode::NoReplyLimit => {
                        read_side.refused.fetch_add(1, Relaxed);
                        read_window.add_permits(1);
                    }
                    code if code.as_u32() > 50100 => {
                        read_side.errors.fetch_add(1, Relaxed);
                        read_window.add_permits(1);
                    }
                    _ => {}
                }
            }
            (deliver, ack)
        });
        tasks.push((sender, reader));
    }
    let progress = {
        let (sides, last) = (sides.clone(), std::sync::Mutex::new((0.0f64, 0u64)));
        Progress::every_second(format!("pairs {pairs}"), move |t| {
            let sum = |f: fn(&Side) -> u64| sides.iter().map(|s| f(s)).sum::<u64>();
            let (sent, acked, delivered) =
                (sum(|s| s.sent.load(Relaxed)), sum(|s| s.acked.load(Relaxed)), sum(|s| s.delivered.load(Relaxed)));
            let rate = match last.lock() {
                Ok(mut l) => {
                    let r = (acked - l.1) as f64 / (t - l.0).max(0.001);
                    *l = (t, acked);
                    r
                }
                Err(_) => f64::NAN,
            };
            format!("sent {sent}, acknowledged {acked}, delivered {delivered}; {rate:.0} acknowledged/s")
        })
    };
    let mut sinks = Vec::new();
    let mut readers = Vec::new();
    for (s, r) in tasks {
        sinks.push(s.await?);
        readers.push(r);
    }
    let send_secs = started.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    let (mut deliver, mut ack) = (histogram(), histogram());
    for r in readers {
        let (d, a) = r.await?;
        deliver.add(d)?;
        ack.add(a)?;
    }
    drop(progress);
    for mut s in sinks {
        let _ = s.close().await;
    }
    let (server_cpu, bench_cpu) = (server_cpu.spent(), bench_cpu.spent());
    let sum = |f: fn(&Side) -> u64| sides.iter().map(|s| f(s)).sum::<u64>();
    let (sent, acked, delivered) =
        (sum(|s| s.sent.load(Relaxed)), sum(|s| s.acked.load(Relaxed)), sum(|s| s.delivered.load(Relaxed)));
    // lost: acknowledged to a sender but never delivered to its (online) peer
    let lost: u64 = if half == 0 {
        sides
            .chunks(2)
            .map(|p| {
                p[0].acked.load(Relaxed).saturating_sub(p[1].delivered.load(Relaxed))
                    + p[1].acked.load(Relaxed).saturating_sub(p[0].delivered.load(Relaxed))
            })
            .sum()
    } else {
        // everyone is online: whatever was acknowledged reached someone's connection
        acked.saturating_sub(delivered)
    };
    let stored = ctx.count_messages(&convs).await?;
    Ok(PairsResult {
        pairs,
        device_peers: half * 2,
        window: opts.window,
        offered_per_s: opts.rate,
        secs: send_secs,
        sent,
        acked,
        delivered,
        refused: sum(|s| s.refused.load(Relaxed)),
        errors: sum(|s| s.errors.load(Relaxed)),
        lost,
        acked_per_s: acked as f64 / send_secs,
        delivered_per_s: delivered as f64 / send_secs,
        deliver_us: Percentiles::of(&deliver),
        ack_us: Percentiles::of(&ack),
        stored_in_mongo: stored,
        server_cpu_s: server_cpu,
        bench_cpu_s: bench_cpu,
    })
}
