//! `synapse`: the `pairs` shape against Matrix Synapse (`scripts/synapse.sh start`), as a peer
//! to compare our server with. N pairs of users, one private room per pair; each side sends to
//! the other with `PUT …/send/m.room.message/{txn}`, keeping at most `window` PUTs in flight
//! and (with a rate) pacing itself; each side reads its room through a `/sync` long-poll loop
//! and measures send → deliver latency from the send time carried first in the body.
//! Acknowledged = the PUT answered 200 (its latency from the send time); lost = acknowledged
//! to a sender but never delivered to its peer.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt as _, stream};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    client::{BenchResult, now_ns},
    measure::CpuClock,
    pairs::{Percentiles, histogram, sent_at},
};

#[derive(Debug, Clone)]
pub struct SynapseOpts {
    /// The client listener, e.g. `http://127.0.0.1:18448`.
    pub base: String,
    /// Synapse's process, for its CPU time.
    pub pid: Option<u32>,
    pub pairs: usize,
    /// Offered messages per second over all senders; None: as fast as acknowledged.
    pub rate: Option<f64>,
    pub window: usize,
    pub duration: Duration,
    pub size: usize,
    /// Makes user names unique across runs on one Synapse.
    pub run: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SynapseResult {
    pub pairs: usize,
    pub window: usize,
    pub offered_per_s: Option<f64>,
    pub secs: f64,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub errors: u64,
    pub lost: u64,
    pub acked_per_s: f64,
    pub delivered_per_s: f64,
    pub deliver_us: Percentiles,
    pub ack_us: Percentiles,
    pub server_cpu_s: Option<f64>,
    pub version: String,
}

/// A registered user.
struct Account {
    user_id: String,
    token: String,
}

#[derive(Default)]
struct Side {
    sent: AtomicU64,
    acked: AtomicU64,
    /// messages from the peer received here
    delivered: AtomicU64,
    errors: AtomicU64,
    /// 429s among the errors (every rc_* limit should be lifted)
    limited: AtomicU64,
    /// syncs whose timeline was cut (`limited`): some deliveries may be missing
    gaps: AtomicU64,
    deliver: Mutex<Option<Histogram<u64>>>,
    ack: Mutex<Option<Histogram<u64>>>,
}

impl Side {
    fn record(h: &Mutex<Option<Histogram<u64>>>, sent_ns: u64) {
        let us = now_ns().saturating_sub(sent_ns) / 1000;
        if let Ok(mut h) = h.lock() {
            let _ = h.get_or_insert_with(histogram).record(us.max(1));
        }
    }
}

/// The part of a `/sync` answer the benchmark reads: the joined rooms' timelines.
#[derive(Deserialize)]
struct SyncReply {
    next_batch: String,
    #[serde(default)]
    rooms: Value,
}

/// `{base}/_matrix/client/v3/rooms/{room}/{tail…}`, the room id encoded as one path segment.
fn room_url(base: &str, room: &str, tail: &[&str]) -> BenchResult<String> {
    let mut url = reqwest::Url::parse(base)?;
    url.path_segments_mut()
        .map_err(|()| format!("{base}: not a base URL"))?
        .pop_if_empty()
        .extend(["_matrix", "client", "v3", "rooms", room])
        .extend(tail);
    Ok(url.into())
}

/// A JSON request's answer, an error naming the status and body when it is not 2xx.
async fn call(req: reqwest::RequestBuilder) -> BenchResult<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{status}: {body}").into());
    }
    Ok(body)
}

async fn register(http: &reqwest::Client, base: &str, name: String) -> BenchResult<Account> {
    let url = format!("{base}/_matrix/client/v3/register");
    let mut body = json!({
        "username": name, "password": format!("{name}-pw"),
        "auth": {"type": "m.login.dummy"}, "initial_device_display_name": "chat-bench",
    });
    for _ in 0..2 {
        let resp = http.post(&url).json(&body).send().await?;
        let status = resp.status();
        let reply: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let field = |k: &str| reply[k].as_str().map(str::to_owned).ok_or(format!("register: no {k}"));
            return Ok(Account { user_id: field("user_id")?, token: field("access_token")? });
        }
        // the user-interactive flow: answer the 401 with its session
        match reply["session"].as_str() {
            Some(session) if status.as_u16() == 401 => body["auth"]["session"] = json!(session),
            _ => return Err(format!("register {name}: {status}: {reply}").into()),
        }
    }
    Err(format!("register {name}: the dummy flow was not accepted").into())
}

/// The first side creates a private room with the second invited; the second joins.
async fn room(http: &reqwest::Client, base: &str, a: &Account, b: &Account) -> BenchResult<String> {
    let created = call(http.post(format!("{base}/_matrix/client/v3/createRoom")).bearer_auth(&a.token).json(&json!({
        "preset": "trusted_private_chat", "is_direct": true, "invite": [b.user_id],
    })))
    .await?;
    let id = created["room_id"].as_str().ok_or("createRoom: no room_id")?.to_owned();
    let join = room_url(base, &id, &["join"])?;
    call(http.post(join).bearer_auth(&b.token).json(&json!({}))).await?;
    Ok(id)
}

/// Only room timeline messages from others; nothing else rides along.
fn filter(me: &str) -> String {
    json!({
        "presence": {"types": []}, "account_data": {"types": []},
        "room": {
            "state": {"types": []}, "ephemeral": {"types": []}, "account_data": {"types": []},
            "timeline": {"types": ["m.room.message"], "not_senders": [me], "limit": 1000},
        },
    })
    .to_string()
}

async fn sync(http: &reqwest::Client, base: &str, acc: &Account, since: Option<&str>) -> BenchResult<SyncReply> {
    let mut q = vec![("filter", filter(&acc.user_id)), ("timeout", if since.is_some() { "30000" } else { "0" }.into())];
    if let Some(s) = since {
        q.push(("since", s.to_owned()));
    }
    let resp = http.get(format!("{base}/_matrix/client/v3/sync")).bearer_auth(&acc.token).query(&q).send().await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("sync: {status}").into());
    }
    Ok(resp.json().await?)
}

/// Long-polls `/sync` from `since` for ever (aborted at the end), counting the peer's messages.
async fn reader(http: reqwest::Client, base: String, acc: Arc<Account>, side: Arc<Side>, mut since: String) {
    loop {
        match sync(&http, &base, &acc, Some(&since)).await {
            Ok(reply) => {
                let rooms = reply.rooms["join"].as_object().into_iter().flat_map(|r| r.values());
                for timeline in rooms.map(|r| &r["timeline"]) {
                    if timeline["limited"].as_bool() == Some(true) {
                        side.gaps.fetch_add(1, Relaxed);
                    }
                    let events = timeline["events"].as_array().into_iter().flatten();
                    for ev in events.filter(|e| e["type"] == "m.room.message" && e["sender"] != acc.user_id.as_str()) {
                        side.delivered.fetch_add(1, Relaxed);
                        if let Some(t) = ev["content"]["body"].as_str().and_then(sent_at) {
                            Side::record(&side.deliver, t);
                        }
                    }
                }
                since = reply.next_batch;
            }
            Err(_) => {
                side.errors.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

struct Sender {
    http: reqwest::Client,
    /// `…/rooms/{room}/send/m.room.message/`
    url: String,
    token: Arc<str>,
    side: Arc<Side>,
    /// unique transaction ids per access token
    txn: String,
}

impl Sender {
    /// Sends until `deadline`, at most `window` PUTs in flight, one per tick when paced.
    async fn run(self, window: usize, interval: Option<Duration>, offset: f64, deadline: Instant, pad: Arc<str>) {
        let window = Arc::new(Semaphore::new(window.max(1)));
        let mut ticker = interval.map(|iv| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + iv.mul_f64(offset), iv);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut puts = JoinSet::new();
        let mut k: u64 = 0;
        while Instant::now() < deadline {
            if let Some(t) = ticker.as_mut() {
                t.tick().await;
            }
            let Ok(permit) = tokio::time::timeout(Duration::from_millis(200), window.clone().acquire_owned()).await
            else {
                continue;
            };
            let Ok(permit) = permit else { break };
            k += 1;
            let t = now_ns();
            let req = self
                .http
                .put(format!("{}{}-{k}", self.url, self.txn))
                .bearer_auth(&*self.token)
                .json(&json!({"msgtype": "m.text", "body": format!("{t} {pad}")}));
            let side = self.side.clone();
            side.sent.fetch_add(1, Relaxed);
            puts.spawn(async move {
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        side.acked.fetch_add(1, Relaxed);
                        Side::record(&side.ack, t);
                    }
                    Ok(resp) => {
                        if resp.status().as_u16() == 429 {
                            side.limited.fetch_add(1, Relaxed);
                        }
                        side.errors.fetch_add(1, Relaxed);
                    }
                    Err(_) => {
                        side.errors.fetch_add(1, Relaxed);
                    }
                }
                drop(permit);
            });
            while puts.try_join_next().is_some() {}
        }
        while puts.join_next().await.is_some() {}
    }
}

/// Synapse's version: the `Server` header of the client listener (`Synapse/1.x`), else its
/// `/_synapse/admin/v1/server_version` (also served there; the federation one is not).
async fn version(http: &reqwest::Client, base: &str) -> String {
    if let Ok(resp) = http.get(format!("{base}/_matrix/client/versions")).send().await
        && let Some(v) = resp.headers().get(reqwest::header::SERVER).and_then(|v| v.to_str().ok())
    {
        return v.trim_start_matches("Synapse/").to_owned();
    }
    match call(http.get(format!("{base}/_synapse/admin/v1/server_version"))).await {
        Ok(v) => v["server_version"].as_str().unwrap_or("unknown").to_owned(),
        Err(_) => "unknown".to_owned(),
    }
}

/// Set-up requests, four at a time, in order; the first error stops the benchmark.
async fn few_at_a_time<T>(calls: impl Iterator<Item = impl Future<Output = BenchResult<T>>>) -> BenchResult<Vec<T>> {
    stream::iter(calls).buffered(4).collect::<Vec<_>>().await.into_iter().collect()
}

fn merge(sides: &[Arc<Side>], pick: fn(&Side) -> &Mutex<Option<Histogram<u64>>>) -> BenchResult<Histogram<u64>> {
    let mut all = histogram();
    for s in sides {
        if let Ok(h) = pick(s).lock()
            && let Some(h) = h.as_ref()
        {
            all.add(h)?;
        }
    }
    Ok(all)
}

pub async fn run(o: &SynapseOpts) -> BenchResult<SynapseResult> {
    let base = o.base.trim_end_matches('/').to_owned();
    let senders = o.pairs * 2;
    // every PUT in flight plus every long poll has its own connection
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(senders * (o.window.max(1) + 1) + 16)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(90))
        .build()?;
    let version = version(&http, &base).await;

    eprintln!("synapse {version}: registering {senders} users, creating {} rooms", o.pairs);
    let names = (0..senders).map(|i| format!("bench{}_{i}", o.run));
    let accounts: Vec<Arc<Account>> =
        few_at_a_time(names.map(|n| register(&http, &base, n))).await?.into_iter().map(Arc::new).collect();
    let pairs: Vec<(&Arc<Account>, &Arc<Account>)> =
        accounts.chunks(2).filter_map(|p| Some((p.first()?, p.get(1)?))).collect();
    let rooms = few_at_a_time(pairs.iter().map(|(a, b)| room(&http, &base, a, b))).await?;

    // each user's initial sync: its long poll starts after everything set up so far
    let initial = few_at_a_time(accounts.iter().map(|a| sync(&http, &base, a, None))).await?;
    let sides: Vec<Arc<Side>> = (0..senders).map(|_| Arc::new(Side::default())).collect();
    let mut readers = JoinSet::new();
    for ((acc, side), since) in accounts.iter().zip(&sides).zip(initial) {
        readers.spawn(reader(http.clone(), base.clone(), acc.clone(), side.clone(), since.next_batch));
    }

    let cpu = CpuClock::start(o.pid);
    let started = Instant::now();
    let deadline = started + o.duration;
    let pad: Arc<str> = "x".repeat(o.size.saturating_sub(20)).into();
    let interval = o.rate.map(|r| Duration::from_secs_f64(senders as f64 / r.max(0.001)));
    let mut tasks = JoinSet::new();
    for (n, (acc, side)) in accounts.iter().zip(&sides).enumerate() {
        let room_id = rooms.get(n / 2).ok_or("a pair without a room")?;
        let sender = Sender {
            http: http.clone(),
            url: room_url(&base, room_id, &["send", "m.room.message", ""])?,
            token: acc.token.as_str().into(),
            side: side.clone(),
            txn: format!("r{}s{n}", o.run),
        };
        tasks.spawn(sender.run(o.window, interval, (n % 97) as f64 / 97.0, deadline, pad.clone()));
    }
    while tasks.join_next().await.transpose()?.is_some() {}
    let secs = started.elapsed().as_secs_f64();

    // drain: until each side has what its peer had acknowledged, or 10 s of nothing new
    let sum = |f: fn(&Side) -> &AtomicU64| sides.iter().map(|s| f(s).load(Relaxed)).sum::<u64>();
    let missing = || -> u64 {
        sides
            .chunks(2)
            .map(|p| match p {
                [a, b] => {
                    a.acked.load(Relaxed).saturating_sub(b.delivered.load(Relaxed))
                        + b.acked.load(Relaxed).saturating_sub(a.delivered.load(Relaxed))
                }
                _ => 0,
            })
            .sum()
    };
    let (mut last, mut quiet) = (sum(|s| &s.delivered), Instant::now());
    while missing() > 0 && quiet.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sum(|s| &s.delivered);
        if now != last {
            (last, quiet) = (now, Instant::now());
        }
    }
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    let server_cpu_s = cpu.spent();

    let (limited, gaps) = (sum(|s| &s.limited), sum(|s| &s.gaps));
    if limited > 0 || gaps > 0 {
        eprintln!("synapse: {limited} sends refused with 429, {gaps} syncs with a cut timeline");
    }
    let (acked, delivered) = (sum(|s| &s.acked), sum(|s| &s.delivered));
    Ok(SynapseResult {
        pairs: o.pairs,
        window: o.window,
        offered_per_s: o.rate,
        secs,
        sent: sum(|s| &s.sent),
        acked,
        delivered,
        errors: sum(|s| &s.errors),
        lost: missing(),
        acked_per_s: acked as f64 / secs,
        delivered_per_s: delivered as f64 / secs,
        deliver_us: Percentiles::of(&merge(&sides, |s| &s.deliver)?),
        ack_us: Percentiles::of(&merge(&sides, |s| &s.ack)?),
        server_cpu_s,
        version,
    })
}
