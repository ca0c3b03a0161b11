//! `soak`: many idle connections held for a long time while pairs chat at a steady rate; the
//! server's resident memory is sampled from the end of a warm-up to the end, and every
//! acknowledged message must be in MongoDB.

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
    /// Resident memory at the end of the warm-up, and at the end (None: not sampled).
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
        let (stop, pid, warmup) = (stop.clone(), ctx.server_pid, o.warmup);
        tokio::spawn(async move {
            let started = Instant::now();
            let (mut start, mut max) = (None, None::<u64>);
            while !stop.load(Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(kib) = pid.and_then(rss_kib) else { continue };
                if started.elapsed() >= warmup {
                    start.get_or_insert(kib);
                    max = max.max(Some(kib));
                }
                if started.elapsed().as_secs().is_multiple_of(30) {
                    println!("soak: {:>4} s, server RSS {} KiB", started.elapsed().as_secs(), kib);
                }
            }
            (start, max)
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
    let end = ctx.server_pid.and_then(rss_kib);
    stop.store(true, Relaxed);
    let (start, max) = sampler.await?;
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
