//! Pairs across nodes: the same load twice in one run, first with both sides of every pair on
//! one node, then with the two sides of each pair on different nodes (every message crosses
//! through Redis pub/sub), with the CPU each node and Redis spent, per message.

use crate::{
    Ctx,
    client::BenchResult,
    measure::CpuClock,
    pairs::{self, PairsOpts, PairsResult},
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodesRun {
    /// `one node` or `across N nodes`.
    pub placement: String,
    pub pairs: PairsResult,
    /// CPU seconds each node spent during the run (None: its process could not be read).
    pub node_cpu_s: Vec<Option<f64>>,
    pub redis_cpu_s: Option<f64>,
    /// From the nodes' `/metrics`, summed over the nodes, during the run: commits, inserts,
    /// seconds inside inserts, seq conflicts (a seq another node took first); None when a
    /// node's `/metrics` could not be read before or after.
    pub metrics: Option<NodeCounters>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeCounters {
    pub commits: u64,
    pub inserts: u64,
    pub insert_s: f64,
    pub seq_conflicts: u64,
}

/// The counters the run reads from each node's `/metrics`, summed; None if a node did not answer.
async fn counters(host: &str, ports: &[u16]) -> Option<[f64; 4]> {
    let names = [
        "chat_commit_batch_size_count",
        "chat_commit_insert_seconds_count",
        "chat_commit_insert_seconds_sum",
        "chat_commit_seq_conflicts_total",
    ];
    let mut out = [0.0; 4];
    for port in ports {
        let text = reqwest::get(format!("http://{host}:{port}/metrics")).await.ok()?.text().await.ok()?;
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            if let (Some(name), Some(v)) = (parts.next(), parts.next())
                && let Some(i) = names.iter().position(|n| *n == name)
            {
                out[i] += v.parse::<f64>().ok()?;
            }
        }
    }
    Some(out)
}

impl NodesRun {
    /// CPU µs per acknowledged message: all nodes together (None unless every node was read),
    /// and Redis.
    pub fn per_message_us(&self) -> (Option<f64>, Option<f64>) {
        let n = self.pairs.acked.max(1) as f64;
        let nodes: Option<f64> = self.node_cpu_s.iter().copied().sum();
        (nodes.map(|c| c * 1e6 / n), self.redis_cpu_s.map(|r| r * 1e6 / n))
    }
}

pub async fn run(
    ctx: &Ctx,
    base: &PairsOpts,
    ports: &[u16],
    pids: &[u32],
    redis_pid: Option<u32>,
) -> BenchResult<Vec<NodesRun>> {
    let mut runs = Vec::new();
    let placements =
        [("one node".to_string(), vec![ports[0]]), (format!("across {} nodes", ports.len()), ports.to_vec())];
    for (k, (placement, nodes)) in placements.into_iter().enumerate() {
        let users = ctx.users(['m', 'n'][k], base.pairs * 2).await?;
        let node_clocks: Vec<CpuClock> = pids.iter().map(|p| CpuClock::start(Some(*p))).collect();
        let redis_clock = CpuClock::start(redis_pid);
        let c0 = counters(&ctx.host, ports).await;
        let r = pairs::run(ctx, &users, &PairsOpts { nodes, ..base.clone() }).await?;
        let c1 = counters(&ctx.host, ports).await;
        runs.push(NodesRun {
            placement,
            pairs: r,
            node_cpu_s: node_clocks.iter().map(CpuClock::spent).collect(),
            redis_cpu_s: redis_clock.spent(),
            metrics: c0.zip(c1).map(|(a, b)| NodeCounters {
                commits: (b[0] - a[0]) as u64,
                inserts: (b[1] - a[1]) as u64,
                insert_s: b[2] - a[2],
                seq_conflicts: (b[3] - a[3]) as u64,
            }),
        });
    }
    Ok(runs)
}

pub fn print(runs: &[NodesRun]) {
    println!("\n== pairs across nodes: the same pairs on one node, then each pair's two sides on two nodes ==");
    println!(
        "{:>16} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>24} {:>9} {:>12} {:>12}",
        "placement",
        "acked/s",
        "deliv/s",
        "ack p50",
        "ack p99",
        "dlv p50",
        "dlv p99",
        "cpu per node (s)",
        "redis cpu",
        "nodes µs/msg",
        "redis µs/msg"
    );
    for r in runs {
        let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
        let cpus: Vec<String> =
            r.node_cpu_s.iter().map(|c| c.map(|c| format!("{c:.1}")).unwrap_or_else(|| "n/a".into())).collect();
        let (node_us, redis_us) = r.per_message_us();
        println!(
            "{:>16} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>24} {:>9} {:>12} {:>12}",
            r.placement,
            r.pairs.acked_per_s,
            r.pairs.delivered_per_s,
            ms(r.pairs.ack_us.p50),
            ms(r.pairs.ack_us.p99),
            ms(r.pairs.deliver_us.p50),
            ms(r.pairs.deliver_us.p99),
            cpus.join(" / "),
            r.redis_cpu_s.map(|c| format!("{c:.1}s")).unwrap_or_else(|| "-".into()),
            node_us.map(|u| format!("{u:.0}")).unwrap_or_else(|| "n/a".into()),
            redis_us.map(|u| format!("{u:.0}")).unwrap_or_else(|| "-".into()),
        );
        match &r.metrics {
            Some(m) => println!(
                "{:>16} commits {}, inserts {} ({:.1} ms each), seq conflicts {} ({:.1}% of messages)",
                "",
                m.commits,
                m.inserts,
                m.insert_s * 1000.0 / m.inserts.max(1) as f64,
                m.seq_conflicts,
                100.0 * m.seq_conflicts as f64 / r.pairs.acked.max(1) as f64
            ),
            None => println!("{:>16} commits, inserts, conflicts: n/a (a node's /metrics did not answer)", ""),
        }
        if r.pairs.stored_in_mongo != r.pairs.acked || r.pairs.lost > 0 {
            println!(
                "  (!) {} acknowledged, {} in MongoDB, {} lost",
                r.pairs.acked, r.pairs.stored_in_mongo, r.pairs.lost
            );
        }
    }
}
