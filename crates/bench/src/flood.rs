//! `login-flood`: many concurrent wrong-password logins, against one account (the account's
//! throttle answers) or spread over many (each attempt hashes: the hashing bound answers). The
//! server's resident memory is sampled all along, and a logged-in user keeps asking
//! `GET /user/me` meanwhile: does the server keep answering others?

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    Ctx,
    client::{BenchResult, rss_kib},
    pairs::{Percentiles, histogram},
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct FloodResult {
    pub attempts: usize,
    pub accounts: usize,
    pub secs: f64,
    /// HTTP status → how many attempts got it.
    pub statuses: BTreeMap<u16, u64>,
    pub attempt_ms: Percentiles,
    /// `GET /user/me` of another user during the flood.
    pub probe_ms: Percentiles,
    pub probes: u64,
    pub probe_failures: u64,
    /// None: no server process to sample
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_peak_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
}

pub async fn run(ctx: &Ctx, attempts: usize, accounts: usize) -> BenchResult<FloodResult> {
    let accounts = accounts.clamp(1, attempts.max(1));
    let names: Vec<String> = (0..accounts).map(|i| format!("f{:05}_{i}", ctx.run)).collect();
    ctx.http.register_many(&names, 8).await?;
    let other = ctx.users('g', 1).await?.remove(0);
    let base = format!("http://{}:{}", ctx.host, ctx.port);
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(120)).pool_max_idle_per_host(attempts).build()?;
    let rss_before = ctx.server_pid.and_then(rss_kib);
    let stop = Arc::new(AtomicBool::new(false));
    // the peak is at least the first sample: the growth it shows is never negative
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), ctx.server_pid);
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
                if let Some(kib) = pid.and_then(rss_kib) {
                    peak.fetch_max(kib, Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let probe = {
        let (stop, client, url, token) = (stop.clone(), client.clone(), format!("{base}/user/me"), other.token.clone());
        tokio::spawn(async move {
            let (mut h, mut n, mut failed) = (histogram(), 0u64, 0u64);
            while !stop.load(Relaxed) {
                let t = Instant::now();
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = h.record(t.elapsed().as_micros() as u64);
                    }
                    _ => failed += 1,
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (h, n, failed)
        })
    };
    let started = Instant::now();
    let logins = (0..attempts).map(|i| {
        let (client, url, name) = (client.clone(), format!("{base}/user/login"), names[i % accounts].clone());
        async move {
            let t = Instant::now();
            let body = json!({"user_name": name, "password": "not-the-password"});
            let status = client.post(&url).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            (status, t.elapsed())
        }
    });
    let results = futures_util::future::join_all(logins).await;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    let _ = sampler.await;
    let (probe_h, probes, probe_failures) = probe.await?;
    let mut statuses = BTreeMap::new();
    let mut h = histogram();
    for (status, took) in &results {
        *statuses.entry(*status).or_insert(0) += 1;
        let _ = h.record(took.as_micros() as u64);
    }
    let ms = |p: Percentiles| Percentiles {
        p50: p.p50 / 1000,
        p90: p.p90 / 1000,
        p99: p.p99 / 1000,
        p999: p.p999 / 1000,
        max: p.max / 1000,
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(FloodResult {
        attempts,
        accounts,
        secs,
        statuses,
        attempt_ms: ms(Percentiles::of(&h)),
        probe_ms: ms(Percentiles::of(&probe_h)),
        probes,
        probe_failures,
        server_rss_before_kib: rss_before,
        server_rss_peak_kib: rss_before.map(|_| peak.load(Relaxed)),
        server_rss_after_kib: ctx.server_pid.and_then(rss_kib),
    })
}
