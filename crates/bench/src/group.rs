//! `group`: one group of `members`, `online` of them on a device connection, `senders` of those
//! sending at an offered rate (or as fast as acknowledged). Measures messages stored per second,
//! pushes delivered per second over all members, and send → deliver latency across members;
//! and, with `beside` pairs chatting at a steady rate in other conversations, their
//! acknowledgement latency alone and under the group's load: what a big group's fan-out costs
//! the other conversations' commits.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use chat_model::ReplyCode;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Ctx,
    client::{BenchResult, User, connect, now_ns},
    measure::{CpuClock, Progress},
    pairs::{self, Frame, FrameMessage, PairsResult, Percentiles, histogram, sent_at},
};

#[derive(Debug, Clone)]
pub struct GroupOpts {
    pub members: usize,
    pub online: usize,
    pub senders: usize,
    /// Offered messages per second over all senders; None: as fast as acknowledged.
    pub rate: Option<f64>,
    pub window: usize,
    pub duration: Duration,
    pub size: usize,
    /// Pairs chatting beside the group (0: none), at `beside_rate` messages/s over all.
    pub beside: usize,
    pub beside_rate: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupResult {
    pub members: usize,
    pub online: usize,
    pub senders: usize,
    pub offered_per_s: Option<f64>,
    pub secs: f64,
    pub sent: u64,
    pub acked: u64,
    /// Pushes of others' messages received over all online members.
    pub delivered: u64,
    /// acked × (online − 1) − delivered: acknowledged, never pushed to an online member.
    pub missing: u64,
    pub errors: u64,
    pub stored_per_s: f64,
    pub pushes_per_s: f64,
    pub deliver_us: Percentiles,
    pub ack_us: Percentiles,
    pub server_cpu_s: Option<f64>,
    pub bench_cpu_s: Option<f64>,
    /// The pairs beside the group: alone first, then under the group's load.
    pub beside_alone: Option<PairsResult>,
    pub beside_loaded: Option<PairsResult>,
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
}

/// Creates the group (its owner is `users[0]`); its id.
async fn create(ctx: &Ctx, users: &[User]) -> BenchResult<u64> {
    let ids: Vec<u64> = users[1..].iter().map(|u| u.id).collect();
    let v = ctx
        .http
        .post_auth("/groups", json!({"name": format!("bench {}", ctx.run), "members": ids}), &users[0].token)
        .await?;
    v["data"]["id"].as_u64().ok_or_else(|| format!("POST /groups: no id in {v}").into())
}

pub async fn run(ctx: &Ctx, opts: &GroupOpts) -> BenchResult<GroupResult> {
    let members = opts.members.max(2);
    let online = opts.online.clamp(2, members);
    let senders = opts.senders.clamp(1, online);
    println!("group: {members} members, {online} online, {senders} sending");
    let users = ctx.users('g', members).await?;
    let group = create(ctx, &users).await?;
    // fresh users for each of the two runs beside: new conversations, new client_msg_ids
    let (alone_users, loaded_users) = if opts.beside > 0 {
        (ctx.users('r', opts.beside * 2).await?, ctx.users('t', opts.beside * 2).await?)
    } else {
        (Vec::new(), Vec::new())
    };
    let beside_opts = |users_rate: f64| pairs::PairsOpts {
        pairs: opts.beside,
        rate: Some(users_rate),
        window: 16,
        duration: opts.duration,
        size: opts.size,
        peers: 0,
        nodes: Vec::new(),
    };
    let beside_alone =
        if opts.beside > 0 { Some(pairs::run(ctx, &alone_users, &beside_opts(opts.beside_rate)).await?) } else { None };

    let mut conns = Vec::with_capacity(online);
    for u in &users[..online] {
        let mut ws = connect(&ctx.host, ctx.port, None, &u.token, 0).await?;
        let _ = tokio::time::timeout(Duration::from_secs(10), ws.next()).await; // the welcome
        conns.push((u.id, ws));
    }
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (server_cpu, bench_cpu) = (CpuClock::start(ctx.server_pid), CpuClock::of_self());
    let started = Instant::now();
    let deadline = started + opts.duration;
    let pad = "x".repeat(opts.size.saturating_sub(20));
    let interval = opts.rate.map(|r| Duration::from_secs_f64(senders as f64 / r.max(0.001)));
    let mut senders_done = Vec::new();
    let mut readers = Vec::new();
    for (n, (me, ws)) in conns.into_iter().enumerate() {
        let (mut sink, mut stream) = ws.split();
        let window = Arc::new(Semaphore::new(opts.window.max(1)));
        let (c, stop_r, read_window) = (counts.clone(), stop.clone(), window.clone());
        readers.push(tokio::spawn(async move {
            let (mut deliver, mut ack) = (histogram(), histogram());
            loop {
                let wait = if stop_r.load(Relaxed) { Duration::from_secs(2) } else { Duration::from_secs(30) };
                let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(wait, stream.next()).await else {
                    if stop_r.load(Relaxed) {
                        break;
                    }
                    continue;
                };
                let Ok(f) = serde_json::from_str::<Frame>(&text) else { continue };
                let now = now_ns();
                let latency = |m: &FrameMessage| sent_at(m.content).map(|t| now.saturating_sub(t) / 1000);
                match f.code {
                    ReplyCode::Incoming => {
                        if let Some(m) = f.message.as_ref().filter(|m| m.from != me) {
                            c.delivered.fetch_add(1, Relaxed);
                            if let Some(us) = latency(m) {
                                let _ = deliver.record(us.max(1));
                            }
                        }
                    }
                    ReplyCode::Delivered | ReplyCode::StoredOffline => {
                        c.acked.fetch_add(1, Relaxed);
                        read_window.add_permits(1);
                        if let Some(us) = f.message.as_ref().and_then(latency) {
                            let _ = ack.record(us.max(1));
                        }
                    }
                    code if code.as_u32() > 50100 => {
                        c.errors.fetch_add(1, Relaxed);
                        read_window.add_permits(1);
                    }
                    _ => {}
                }
            }
            (deliver, ack)
        }));
        if n >= senders {
            senders_done.push(tokio::spawn(async move { (sink, started) }));
            continue;
        }
        let (c, pad) = (counts.clone(), pad.clone());
        senders_done.push(tokio::spawn(async move {
            let mut ticker = interval.map(|iv| {
                let mut t =
                    tokio::time::interval_at(tokio::time::Instant::now() + iv.mul_f64(n as f64 / senders as f64), iv);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut k = 0u64;
            while Instant::now() < deadline {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let Ok(Ok(permit)) = tokio::time::timeout(Duration::from_millis(200), window.acquire()).await else {
                    continue;
                };
                permit.forget();
                k += 1;
                let frame = format!(
                    r#"{{"type":1,"group":{group},"content":"{} {pad}","client_msg_id":"{me}-{k}"}}"#,
                    now_ns()
                );
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
                c.sent.fetch_add(1, Relaxed);
            }
            (sink, Instant::now())
        }));
    }
    let progress = {
        let c = counts.clone();
        Progress::every_second("group", move |t| {
            let (sent, acked, delivered) = (c.sent.load(Relaxed), c.acked.load(Relaxed), c.delivered.load(Relaxed));
            format!("sent {sent}, acknowledged {acked} ({:.0}/s), pushes delivered {delivered}", acked as f64 / t)
        })
    };
    // the pairs beside, under the group's load
    let beside_loaded = if opts.beside > 0 {
        Some(pairs::run(ctx, &loaded_users, &beside_opts(opts.beside_rate)).await?)
    } else {
        None
    };
    let mut sinks = Vec::new();
    let mut ended = started;
    for s in senders_done {
        let (sink, at) = s.await?;
        sinks.push(sink);
        ended = ended.max(at);
    }
    drop(progress);
    // the sending time (the pairs beside may have run on after it)
    let secs = ended.duration_since(started).as_secs_f64().max(0.001);
    stop.store(true, Relaxed);
    let (mut deliver, mut ack) = (histogram(), histogram());
    for r in readers {
        let (d, a) = r.await?;
        deliver.add(d)?;
        ack.add(a)?;
    }
    for mut s in sinks {
        let _ = s.close().await;
    }
    let (sent, acked, delivered) =
        (counts.sent.load(Relaxed), counts.acked.load(Relaxed), counts.delivered.load(Relaxed));
    Ok(GroupResult {
        members,
        online,
        senders,
        offered_per_s: opts.rate,
        secs,
        sent,
        acked,
        delivered,
        missing: (acked * (online as u64 - 1)).saturating_sub(delivered),
        errors: counts.errors.load(Relaxed),
        stored_per_s: acked as f64 / secs,
        pushes_per_s: delivered as f64 / secs,
        deliver_us: Percentiles::of(&deliver),
        ack_us: Percentiles::of(&ack),
        server_cpu_s: server_cpu.spent(),
        bench_cpu_s: bench_cpu.spent(),
        beside_alone,
        beside_loaded,
    })
}
