//! `chat-bench`: drives a running chat server over its real protocol (HTTP to register and log
//! in, then WebSocket frames) and prints what it measured; `scripts/bench.sh` runs the suite.

mod chart;
mod client;
mod conditions;
mod flood;
mod group;
mod idle;
mod measure;
mod nodes;
mod offline;
mod pairs;
mod peer;
mod report;
mod soak;
mod store;
mod synapse;

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

use client::{BenchResult, Http};

#[derive(Parser, Debug)]
#[command(name = "chat-bench", about = "Benchmark a running chat server")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1", global = true)]
    host: String,
    #[arg(long, default_value_t = 8080, global = true)]
    port: u16,
    /// The server's process id, for its CPU time and resident memory.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// The server's MongoDB, to check what was stored and to measure the store itself.
    #[arg(long, default_value = "mongodb://127.0.0.1:27017", global = true)]
    mongo_url: String,
    #[arg(long, default_value = "chat_bench", global = true)]
    mongo_db: String,
    /// The server's write concern (`mongo.write_concern`), which the store probes use too:
    /// `majority`, a number of members, or a tag.
    #[arg(long, default_value = "majority", global = true)]
    write_w: String,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, global = true)]
    write_j: bool,
    /// A server of the same service that has served nothing yet, for the suite's idle
    /// scenario (its memory per connection is measured from a fresh baseline).
    #[arg(long, global = true)]
    idle_port: Option<u16>,
    #[arg(long, global = true)]
    idle_pid: Option<u32>,
    /// Where the JSON lines and the chart go.
    #[arg(long, default_value = "results", global = true)]
    results: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Every scenario with the defaults below (a few minutes).
    Suite {
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        #[arg(long, default_value_t = 16)]
        window: usize,
        #[arg(long, default_value_t = 15.0)]
        secs: f64,
        #[arg(long, default_value_t = 19_000)]
        idle_conns: usize,
        #[arg(long, default_value_t = 60.0)]
        idle_hold_secs: f64,
    },
    /// Pairs chatting both ways, both online.
    Pairs {
        #[command(flatten)]
        load: Load,
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Device connections (`/ws`): each user on one, talking with this many peers at once
        /// (even); 0: a `?toUid=` socket per conversation.
        #[arg(long, default_value_t = 0)]
        peers: usize,
    },
    /// Pairs on one node, then each pair's two sides on two nodes (`--nodes` ports), in one run.
    Nodes {
        /// The nodes' ports (the first is `--port`'s node or another).
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<u16>,
        /// The nodes' process ids, in the same order, for their CPU time.
        #[arg(long, value_delimiter = ',')]
        node_pids: Vec<u32>,
        /// Redis's process id, for its CPU time.
        #[arg(long)]
        redis_pid: Option<u32>,
        #[command(flatten)]
        load: Load,
    },
    /// One group: members on device connections, some of them sending; fan-out throughput and
    /// latency, and what it costs pairs chatting beside it.
    Group {
        #[arg(long, default_value_t = 200)]
        members: usize,
        /// Members online (on a device connection); the rest are offline.
        #[arg(long, default_value_t = 200)]
        online: usize,
        #[arg(long, default_value_t = 4)]
        senders: usize,
        /// Offered messages/s over all senders (each is pushed to every online member).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 16)]
        window: usize,
        #[arg(long, default_value_t = 15.0)]
        secs: f64,
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Pairs chatting in other conversations beside the group (0: none).
        #[arg(long, default_value_t = 10)]
        beside: usize,
        /// Their messages/s over all of them.
        #[arg(long, default_value_t = 200.0)]
        beside_rate: f64,
    },
    /// Idle authenticated connections held with heartbeats.
    Idle {
        #[arg(long, default_value_t = 19_000)]
        conns: usize,
        #[arg(long, default_value_t = 60.0)]
        hold_secs: f64,
        /// Device connections (`/ws`) instead of `?toUid=` sockets.
        #[arg(long)]
        device: bool,
    },
    /// Concurrent wrong-password logins: the server's memory, and whether it answers others.
    LoginFlood {
        #[arg(long, default_value_t = 500)]
        attempts: usize,
        /// Accounts the attempts are spread over (1: the account throttle answers; as many
        /// as attempts: every attempt hashes, under the hashing bound).
        #[arg(long, default_value_t = 1)]
        accounts: usize,
    },
    /// Idle connections held for a long time while pairs chat at a steady rate.
    Soak {
        #[arg(long, default_value_t = 19_000)]
        conns: usize,
        #[arg(long, default_value_t = 20)]
        pairs: usize,
        /// Messages/s over all senders.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 1140.0)]
        secs: f64,
        /// Seconds of chat before the memory window starts: by 540 s every connection has been
        /// sent its 33rd frame (its pings, one each 15 s), when its outgoing queue takes its
        /// second and last block.
        #[arg(long, default_value_t = 540.0)]
        warmup_secs: f64,
    },
    /// Fill an offline peer's unread box, then fetch it and page the history.
    Offline {
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 500)]
        per_sender: usize,
    },
    /// MongoDB's own insert rate with the message shape.
    Store {
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// The store alone under the server's group commit at an offered rate: the latency floor.
    StoreLatency {
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 15.0)]
        secs: f64,
    },
    /// This server and Matrix Synapse (started by `scripts/synapse.sh`) under the same pairs,
    /// window and rates, side by side: as fast as acknowledged, then at each `--rate`.
    PeerSynapse {
        /// Synapse's client-server API.
        #[arg(long, default_value = "http://127.0.0.1:18448")]
        synapse: String,
        /// Synapse's process id, for its CPU time.
        #[arg(long)]
        synapse_pid: Option<u32>,
        #[arg(long, default_value_t = 10)]
        pairs: usize,
        #[arg(long, default_value_t = 16)]
        window: usize,
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        /// Offered messages/s over all senders, after the maximum (repeat or comma-separate);
        /// without it, half of Synapse's maximum.
        #[arg(long = "rate", value_delimiter = ',')]
        rates: Vec<f64>,
    },
    #[command(hide = true)]
    IdleWorker {
        #[arg(long)]
        src: Option<IpAddr>,
        #[arg(long)]
        spec: PathBuf,
    },
}

/// The load of the pairs scenarios.
#[derive(clap::Args, Debug)]
struct Load {
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Offered messages/s over all senders; without it, as fast as acknowledged.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 16)]
    window: usize,
    #[arg(long, default_value_t = 15.0)]
    secs: f64,
}

/// What every scenario needs.
pub struct Ctx {
    pub host: String,
    pub port: u16,
    pub server_pid: Option<u32>,
    pub http: Http,
    pub mongo: mongodb::Database,
    /// Makes user names unique per run: `<letter><run, 5 digits>_<index>`.
    pub run: u32,
}

impl Ctx {
    pub async fn count_messages(&self, convs: &[String]) -> BenchResult<u64> {
        let coll = self.mongo.collection::<bson::Document>(chat_dao::message::COLLECTION);
        Ok(coll.count_documents(bson::doc! { "conv": { "$in": convs } }).await?)
    }

    /// `n` fresh users named `<letter><run>_<i>` (5 to 15 characters).
    pub async fn users(&self, letter: char, n: usize) -> BenchResult<Vec<client::User>> {
        self.http.users(&format!("{letter}{:05}_", self.run), n, 8).await
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> BenchResult<()> {
    if let Cmd::IdleWorker { src, spec } = cli.cmd {
        return idle::worker(cli.host, cli.port, src, spec).await;
    }
    // the store probes write as the server does: with its write concern
    let w = match cli.write_w.parse::<u32>() {
        Ok(n) => chat_model::config::Acknowledgment::Nodes(n),
        Err(_) => chat_model::config::Acknowledgment::Tag(cli.write_w.clone()),
    };
    let write_concern = chat_dao::mongo::write_concern(&chat_model::config::WriteConcernSettings { w, j: cli.write_j });
    let mut options = mongodb::options::ClientOptions::parse(&cli.mongo_url).await?;
    options.write_concern = Some(write_concern.clone());
    let mongo = mongodb::Client::with_options(options)?.database(&cli.mongo_db);
    let conditions = conditions::Conditions::collect(&mongo, &write_concern).await;
    conditions.print();
    let run = (client::now_ns() / 1_000_000_000 % 100_000) as u32;
    let ctx = Ctx {
        http: Http::new(&cli.host, cli.port),
        host: cli.host,
        port: cli.port,
        server_pid: cli.server_pid,
        mongo,
        run,
    };
    let idle_server = cli.idle_port.map(|port| (port, cli.idle_pid));
    let mut out = report::Report::new(&cli.results, conditions)?;
    match cli.cmd {
        Cmd::Suite { pairs, window, secs, idle_conns, idle_hold_secs } => {
            let idle = IdleOpts { conns: idle_conns, hold_secs: idle_hold_secs, server: idle_server };
            suite(&ctx, &mut out, pairs, window, secs, idle).await?
        }
        Cmd::Pairs { load: Load { pairs, rate, window, secs }, size, peers } => {
            let users = ctx.users('p', pairs * 2).await?;
            let opts = pairs::PairsOpts {
                pairs,
                rate,
                window,
                duration: Duration::from_secs_f64(secs),
                size,
                peers,
                nodes: Vec::new(),
            };
            if peers > 0 {
                println!("device connections: {} users, each talking with {peers} peers", pairs * 2);
            }
            let r = pairs::run(&ctx, &users, &opts).await?;
            out.pairs(&[r])?;
        }
        Cmd::Nodes { nodes, node_pids, redis_pid, load: Load { pairs, rate, window, secs } } => {
            let base = pairs::PairsOpts {
                pairs,
                rate,
                window,
                duration: Duration::from_secs_f64(secs),
                size: 100,
                peers: 0,
                nodes: Vec::new(),
            };
            let runs = nodes::run(&ctx, &base, &nodes, &node_pids, redis_pid).await?;
            nodes::print(&runs);
            out.nodes(&runs)?;
        }
        Cmd::Idle { conns, hold_secs, device } => {
            let (holders, peers) = idle_users(&ctx, conns).await?;
            if device {
                println!("device connections (/ws)");
            }
            let r = idle::run(&ctx, &holders, &peers, conns, Duration::from_secs_f64(hold_secs), device, false).await?;
            out.idle(&r)?;
        }
        Cmd::Group { members, online, senders, rate, window, secs, size, beside, beside_rate } => {
            let opts = group::GroupOpts {
                members,
                online,
                senders,
                rate: Some(rate),
                window,
                duration: Duration::from_secs_f64(secs),
                size,
                beside,
                beside_rate,
            };
            out.group(&group::run(&ctx, &opts).await?)?;
        }
        Cmd::LoginFlood { attempts, accounts } => {
            out.flood(&flood::run(&ctx, attempts, accounts).await?)?;
        }
        Cmd::Soak { conns, pairs, rate, secs, warmup_secs } => {
            let (holders, peers) = idle_users(&ctx, conns).await?;
            let chatters = ctx.users('s', pairs * 2).await?;
            let opts = soak::SoakOpts {
                conns,
                pairs,
                rate,
                duration: Duration::from_secs_f64(secs),
                warmup: Duration::from_secs_f64(warmup_secs),
            };
            out.soak(&soak::run(&ctx, &holders, &peers, &chatters, &opts).await?)?;
        }
        Cmd::Offline { senders, per_sender } => {
            let users = ctx.users('o', senders + 1).await?;
            let r = offline::run(&ctx, &users[1..], &users[0], per_sender, 16).await?;
            out.offline(&r)?;
        }
        Cmd::Store { secs } => {
            let (indexes, source) = store::server_indexes(&ctx.mongo).await?;
            let r = store::run(&ctx.mongo, &indexes, &[1, 100, 500], 4, secs, 100).await?;
            out.store(&r, source)?;
        }
        Cmd::StoreLatency { rate, secs } => {
            let (indexes, _) = store::server_indexes(&ctx.mongo).await?;
            out.group_commit(&group_commit(&ctx, &indexes, rate, secs).await?)?;
        }
        Cmd::PeerSynapse { synapse, synapse_pid, pairs, window, secs, rates } => {
            let opts = peer::PeerOpts { synapse, synapse_pid, pairs, window, secs, rates };
            peer::run(&ctx, &mut out, &opts).await?;
        }
        Cmd::IdleWorker { .. } => {}
    }
    Ok(())
}

/// The store alone, paced like the server's committer (its default shards and batch limit).
async fn group_commit(
    ctx: &Ctx,
    indexes: &[mongodb::IndexModel],
    rate: f64,
    secs: f64,
) -> BenchResult<store::GroupCommitResult> {
    let chat = chat_model::config::ChatSettings::default();
    store::group_commit(&ctx.mongo, indexes, rate, chat.commit_shards, chat.commit_batch, secs, 100).await
}

/// The suite's idle scenario: how many connections, how long, on which server.
struct IdleOpts {
    conns: usize,
    hold_secs: f64,
    /// a fresh server's port and process id, else the benchmark's server
    server: Option<(u16, Option<u32>)>,
}

/// Idle connections come from 50 users, each holding many connections to its own peer.
async fn idle_users(ctx: &Ctx, conns: usize) -> BenchResult<(Vec<client::User>, Vec<client::User>)> {
    let groups = conns.clamp(1, 50);
    Ok((ctx.users('h', groups).await?, ctx.users('q', groups).await?))
}

async fn suite(
    ctx: &Ctx,
    out: &mut report::Report,
    pairs: usize,
    window: usize,
    secs: f64,
    idle: IdleOpts,
) -> BenchResult<()> {
    let (indexes, source) = store::server_indexes(&ctx.mongo).await?;
    let stores = store::run(&ctx.mongo, &indexes, &[1, 100, 500], 4, 8.0, 100).await?;
    out.store(&stores, source)?;
    let duration = Duration::from_secs_f64(secs);
    let mut runs = Vec::new();
    let users = ctx.users('a', pairs * 2).await?;
    let max = pairs::run(
        ctx,
        &users,
        &pairs::PairsOpts { pairs, rate: None, window, duration, size: 100, peers: 0, nodes: Vec::new() },
    )
    .await?;
    let ceiling = max.acked_per_s;
    runs.push(max);
    for (k, fraction) in [0.25, 0.5, 0.75].into_iter().enumerate() {
        let users = ctx.users(['b', 'c', 'd'][k], pairs * 2).await?;
        let opts = pairs::PairsOpts {
            pairs,
            rate: Some(ceiling * fraction),
            window,
            duration,
            size: 100,
            peers: 0,
            nodes: Vec::new(),
        };
        runs.push(pairs::run(ctx, &users, &opts).await?);
    }
    out.pairs(&runs)?;
    // the store alone at each rate the server achieved, the same indexes and write concern
    let mut floors = Vec::new();
    for r in &runs {
        floors.push(group_commit(ctx, &indexes, r.acked_per_s, secs).await?);
    }
    out.beside_store(&runs, &floors)?;
    let best = stores.iter().max_by(|a, b| a.docs_per_s.total_cmp(&b.docs_per_s));
    if let Some(best) = best {
        let c = out.conditions();
        println!(
            "\npersisted send throughput: {:.0} msg/s = {:.0}% of the store's ceiling in this run ({:.0} docs/s: \
             batches of {}, {} writers, the {} indexes of the server's collection, write concern {}, {})",
            ceiling,
            100.0 * ceiling / best.docs_per_s.max(1.0),
            best.docs_per_s,
            best.batch,
            best.writers,
            best.indexes.len(),
            c.store.write_concern,
            match c.store.durable {
                Some(true) => "durable",
                Some(false) => "not durable",
                None => "durability not known",
            }
        );
    }
    chart::draw(&out.dir.join("latency.svg"), &runs, &floors)?;
    let opts = group::GroupOpts {
        members: 200,
        online: 200,
        senders: 4,
        rate: Some(100.0),
        window,
        duration,
        size: 100,
        beside: 10,
        beside_rate: 200.0,
    };
    out.group(&group::run(ctx, &opts).await?)?;
    let users = ctx.users('o', 11).await?;
    out.offline(&offline::run(ctx, &users[1..], &users[0], 500, 16).await?)?;
    if idle.conns > 0 {
        // on a server that has served nothing, when there is one: the one that ran the scenarios
        // above has grown and may give memory back while the connections are held
        let fresh = idle.server.map(|(port, pid)| Ctx {
            host: ctx.host.clone(),
            port,
            server_pid: pid,
            http: client::Http::new(&ctx.host, port),
            mongo: ctx.mongo.clone(),
            run: ctx.run,
        });
        let on = fresh.as_ref().unwrap_or(ctx);
        let (holders, peers) = idle_users(on, idle.conns).await?;
        let hold = Duration::from_secs_f64(idle.hold_secs);
        let r = idle::run(on, &holders, &peers, idle.conns, hold, false, fresh.is_some()).await?;
        out.idle(&r)?;
    }
    Ok(())
}
