//! `soak`: many idle connections held for a long time while pairs chat at a steady rate; the
//! server's resident memory is sampled every second, its level at the start of the window after
//! a warm-up compared with its level at the end, and every acknowledged message must be in
//! MongoDB.
//!
//! A level is the median of a minute of samples: the chat's bursts lift the resident memory by
//! 20-30 MiB for a second at a time (allocations freed within it), so one sample at either end
//! measures a burst as often as the level.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use crate::{
    Ctx,
    client::{BenchResult, User, rss_kib},
    idle::Fleet,
    pairs::{self, PairsOpts, PairsResult},
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakResult {
    pub connections: usize,
    pub failed: usize,
    pub secs: f64,
    pub warmup_secs: f64,
    pub pairs: PairsResult,
    /// Resident memory in the first minute after the warm-up and in the last minute of the chat
    /// (medians of one-second samples; None: not sampled), and the highest sample after the
    /// warm-up.
    pub server_rss_start_kib: Option<u64>,
    pub server_rss_end_kib: Option<u64>,
    pub server_rss_max_kib: Option<u64>,
    pub rss_change_pct: Option<f64>,
    pub got_message_at_end: usize,
}

pub struct SoakOpts {
    pub conns: usize,
    pub pairs: usize,
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
}

pub async fn run(
    ctx: &Ctx,
    holders: &[User],
    peers: &[User],
    chatters: &[User],
    o: &SoakOpts,
) -> BenchResult<SoakResult> {
    let mut fleet = Fleet::start(ctx, holders, peers, o.conns, false).await?;
    println!(
        "soak: {} connections held ({} failed) in {:.0} s; chatting for {:.0} s",
        fleet.ok,
        fleet.failed,
        fleet.setup_secs,
        o.duration.as_secs_f64()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pid) = (stop.clone(), ctx.server_pid);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut samples: Vec<(Duration, u64)> = Vec::new();
            while !stop.load(Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(kib) = pid.and_then(rss_kib) else { continue };
                samples.push((started.elapsed(), kib));
                if started.elapsed().as_secs().is_multiple_of(30) {
                    println!("soak: {:>4} s, server RSS {} KiB", started.elapsed().as_secs(), kib);
                }
            }
            samples
        })
    };
    let opts = PairsOpts {
        pairs: o.pairs,
        rate: Some(o.rate),
        window: 16,
        duration: o.duration,
        size: 100,
        peers: 0,
        nodes: Vec::new(),
    };
    let result = pairs::run(ctx, chatters, &opts).await?;
    stop.store(true, Relaxed);
    let samples = sampler.await?;
    let window: Vec<(Duration, u64)> = samples.into_iter().filter(|(t, _)| *t >= o.warmup).collect();
    let minute = Duration::from_secs(60);
    let last = window.last().map(|(t, _)| *t).unwrap_or_default();
    let start = median(window.iter().filter(|(t, _)| *t < o.warmup + minute).map(|(_, k)| *k));
    let end = median(window.iter().filter(|(t, _)| *t + minute > last).map(|(_, k)| *k));
    let max = window.iter().map(|(_, k)| *k).max();
    let got = fleet.wake(ctx, holders, peers).await?;
    let (connections, failed) = (fleet.ok, fleet.failed);
    fleet.stop().await;
    Ok(SoakResult {
        connections,
        failed,
        secs: result.secs,
        warmup_secs: o.warmup.as_secs_f64(),
        pairs: result,
        server_rss_start_kib: start,
        server_rss_end_kib: end,
        server_rss_max_kib: max,
        rss_change_pct: start.zip(end).filter(|(s, _)| *s > 0).map(|(s, e)| 100.0 * (e as f64 - s as f64) / s as f64),
        got_message_at_end: got,
    })
}

/// The median of some samples (the upper one of an even count); None for none.
fn median(samples: impl Iterator<Item = u64>) -> Option<u64> {
    let mut all: Vec<u64> = samples.collect();
    all.sort_unstable();
    all.get(all.len() / 2).copied()
}
