//! `chat-drill`: the fault drill (`scripts/faults.sh`). It starts the chat server on a Redis,
//! a SecantusDB and a proxy to MySQL of its own, keeps pairs chatting with clients that behave
//! like real ones, and in turn: kills Redis and starts it empty; freezes MongoDB for 6 s; kills
//! MongoDB and starts it again; makes MySQL unreachable for 6 s; stops the server with SIGTERM
//! and starts it again; kills it with SIGKILL and starts it again. Then it compares what the
//! clients were told with what the store holds, prints per fault and in total, and exits
//! non-zero when anything that must be zero is not.

mod clients;
mod env;
mod faults;
mod procs;
mod report;
mod verify;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use chat_model::Target;
use clap::Parser;
use tokio::sync::watch;

use crate::{
    clients::{Client, Ledger, Phase, lock},
    faults::Window,
    procs::DrillResult,
};

#[derive(Debug, Parser)]
#[command(
    name = "chat-drill",
    about = "Breaks the stores and the server under load and checks nothing acknowledged was lost"
)]
struct Args {
    /// The chat-server binary.
    #[arg(long)]
    server_bin: PathBuf,
    /// The configuration folder the server reads (the drill overrides the stores by environment).
    #[arg(long, default_value = "config")]
    config: PathBuf,
    /// The MySQL (MariaDB) server the drill's proxy stands in front of.
    #[arg(long, default_value = "127.0.0.1:3306")]
    mysql: std::net::SocketAddr,
    #[arg(long, default_value = "root")]
    mysql_user: String,
    /// Chatting pairs.
    #[arg(long, default_value_t = 8)]
    pairs: usize,
    /// Messages per second each sender sends.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds of chat before the first fault.
    #[arg(long, default_value_t = 4)]
    warmup_secs: u64,
    /// Seconds after each fault before the next.
    #[arg(long, default_value_t = 8)]
    recover_secs: u64,
    /// The work folder (logs, the stores' data); default a new one under /tmp.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Start SecantusDB without --sync-on-commit, which loses acknowledged writes when killed:
    /// shows what the drill catches (it should fail).
    #[arg(long)]
    unsafe_store: bool,
    /// Only these faults, by number in the order of the list (1 = Redis ... 6 = SIGKILL).
    #[arg(long, value_delimiter = ',')]
    only: Vec<usize>,
    /// Members of the group chatting beside the pairs (0: no group).
    #[arg(long, default_value_t = 3)]
    group_members: usize,
    /// Server processes, as nodes of one service: the two sides of each pair and the group's
    /// members on different nodes; the server's faults hit the first node while the others
    /// keep serving, and its clients move to another node.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chat-drill: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> DrillResult<bool> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(chat_testkit::unique_name().replace("chat_test_", "chat-drill-")));
    println!(
        "chat-drill: {} pairs at {}/s per sender on {} node(s); work folder {}",
        args.pairs,
        args.rate,
        args.nodes.max(1),
        dir.display()
    );
    let config = std::fs::canonicalize(&args.config).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let server_bin =
        std::fs::canonicalize(&args.server_bin).map_err(|e| format!("{}: {e}", args.server_bin.display()))?;
    let mut env = env::Env::start(env::Options {
        server_bin: &server_bin,
        config: &config,
        mysql: args.mysql,
        mysql_user: &args.mysql_user,
        dir: dir.clone(),
        durable_store: !args.unsafe_store,
        rate: args.rate,
        nodes: args.nodes,
    })
    .await?;
    let result = drill(&args, &mut env).await;
    env.drop_database(args.mysql, &args.mysql_user).await;
    if result.as_ref().is_ok_and(|ok| *ok) && args.dir.is_none() {
        drop(env);
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("logs kept in {}", dir.display());
    }
    result
}

async fn drill(args: &Args, env: &mut env::Env) -> DrillResult<bool> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let ledger = Arc::new(std::sync::Mutex::new(Ledger::default()));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let mut tasks = Vec::new();
    let ports: Arc<[u16]> = env.ports.clone().into();
    let client = |me, token, target, audience, device, opens, node| Client {
        me,
        token,
        target,
        audience,
        device,
        opens,
        rate: args.rate,
        ports: ports.clone(),
        node,
        http: http.clone(),
        ledger: ledger.clone(),
        phase: phase_rx.clone(),
    };
    for p in 0..args.pairs {
        let (a, ta) = clients::login(&http, &env.base(), &format!("drill_a{p}")).await?;
        let (b, tb) = clients::login(&http, &env.base(), &format!("drill_b{p}")).await?;
        for (side, (me, token, peer, opens)) in
            [(a.clone(), ta, b.id, true), (b, tb, a.id, false)].into_iter().enumerate()
        {
            // half the pairs on device connections, half on the demo's sockets; the two sides
            // on different nodes
            let client = client(me, token, Target::User(peer), vec![peer], p % 2 == 1, opens, p + side);
            tasks.push(tokio::spawn(client.run()));
        }
    }
    // a group beside the pairs: its last member on `?groupId=`, the others on device connections
    let mut members = Vec::new();
    for k in 0..args.group_members {
        members.push(clients::login(&http, &env.base(), &format!("drill_g{k}")).await?);
    }
    let group = if members.len() >= 2 { create_group(&http, &env.base(), &members).await? } else { 0 };
    if group == 0 {
        members.clear();
    }
    let last = members.len().saturating_sub(1);
    for (k, (me, token)) in members.iter().enumerate() {
        let audience = members.iter().map(|(m, _)| m.id).filter(|&id| id != me.id).collect();
        let client = client(me.clone(), token.clone(), Target::Group(group), audience, k != last, true, k);
        tasks.push(tokio::spawn(client.run()));
    }
    let readiness = report::Readiness::start(env.base());
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let mut windows: Vec<Window> = Vec::new();
    let chosen = faults::ALL.iter().enumerate().filter(|(i, _)| args.only.is_empty() || args.only.contains(&(i + 1)));
    for (_, &fault) in chosen {
        let start = Instant::now();
        println!("-- {}", fault.name());
        fault.run(env).await?;
        let end = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.recover_secs)).await;
        windows.push(Window { fault, start, end, until: Instant::now() });
    }
    // no new sends; every unanswered one is answered; then a last catch-up of unread
    phase_tx.send(Phase::Draining)?;
    let drained = wait_until(Duration::from_secs(60), || lock(&ledger).outstanding.values().all(|n| *n == 0)).await;
    if !drained {
        println!("warning: sends still unanswered after 60 s");
    }
    phase_tx.send(Phase::Final)?;
    let all_done = tokio::time::timeout(Duration::from_secs(30), futures_util::future::join_all(tasks)).await.is_ok();
    if !all_done {
        println!("warning: clients still catching up after 30 s");
    }
    let ready_log = readiness.stop().await;
    let ledger = std::mem::take(&mut *lock(&ledger));
    let verdict = verify::verify(&env.mongo_url(), &ledger, &windows).await?;
    report::print(&ledger, &windows, &verdict, &ready_log, &env.notes);
    Ok(verdict.total.all_zero() && verdict.unanswered == 0 && ledger.unexpected.is_empty())
}

/// Creates a group of the first member with the others; its id.
async fn create_group(http: &reqwest::Client, base: &str, members: &[(clients::Account, String)]) -> DrillResult<u64> {
    let ids: Vec<u64> = members[1..].iter().map(|(m, _)| m.id).collect();
    let res = http
        .post(format!("{base}/groups"))
        .bearer_auth(&members[0].1)
        .json(&serde_json::json!({"name": "drill", "members": ids}))
        .send()
        .await?;
    let status = res.status();
    let v: serde_json::Value = res.json().await?;
    v["data"]["id"].as_u64().ok_or_else(|| format!("POST /groups: {status} {v}").into())
}

async fn wait_until(within: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}
