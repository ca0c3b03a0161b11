//! Pairs across nodes: the same load twice in one run, first with both sides of every pair on
//! one node, then with the two sides of each pair on different nodes (every message crosses
//! through Redis pub/sub), with the CPU each node and Redis spent, per message.

use crate::{
    Ctx,
    client::{BenchResult, cpu_secs},
    pairs::{self, PairsOpts, PairsResult},
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodesRun {
    /// `one node` or `across N nodes`.
    pub placement: String,
    pub pairs: PairsResult,
    /// CPU seconds each node spent during the run.
    pub node_cpu_s: Vec<f64>,
    pub redis_cpu_s: Option<f64>,
    /// From the nodes' `/metrics`, summed over the nodes, during the run: commits, inserts,
    /// seconds inside inserts, seq conflicts (a seq another node took first).
    pub commits: u64,
    pub inserts: u64,
    pub insert_s: f64,
    pub seq_conflicts: u64,
}

/// The counters the run reads from each node's `/metrics`.
async fn counters(host: &str, ports: &[u16]) -> [f64; 4] {
    let names = [
        "chat_commit_batch_size_count",
        "chat_commit_insert_seconds_count",
        "chat_commit_insert_seconds_sum",
        "chat_commit_seq_conflicts_total",
    ];
    let mut out = [0.0; 4];
    for port in ports {
        let Ok(res) = reqwest::get(format!("http://{host}:{port}/metrics")).await else { continue };
        let Ok(text) = res.text().await else { continue };
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            if let (Some(name), Some(v)) = (parts.next(), parts.next())
                && let Some(i) = names.iter().position(|n| *n == name)
            {
                out[i] += v.parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    out
}

impl NodesRun {
    /// CPU µs per acknowledged message: all nodes together, and Redis.
    pub fn per_message_us(&self) -> (f64, Option<f64>) {
        let n = self.pairs.acked.max(1) as f64;
        (self.node_cpu_s.iter().sum::<f64>() * 1e6 / n, self.redis_cpu_s.map(|r| r * 1e6 / n))
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
        let cpu =
            || (pids.iter().map(|p| cpu_secs(*p).unwrap_or(0.0)).collect::<Vec<_>>(), redis_pid.and_then(cpu_secs));
        let (nodes0, redis0) = cpu();
        let c0 = counters(&ctx.host, ports).await;
        let r = pairs::run(ctx, &users, &PairsOpts { nodes, ..base.clone() }).await?;
        let (nodes1, redis1) = cpu();
        let c1 = counters(&ctx.host, ports).await;
        let d: Vec<f64> = c1.iter().zip(c0).map(|(a, b)| a - b).collect();
        runs.push(NodesRun {
            placement,
            pairs: r,
            node_cpu_s: nodes1.iter().zip(&nodes0).map(|(a, b)| a - b).collect(),
            redis_cpu_s: redis1.zip(redis0).map(|(a, b)| a - b),
            commits: d[0] as u64,
            inserts: d[1] as u64,
            insert_s: d[2],
            seq_conflicts: d[3] as u64,
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
        let cpus: Vec<String> = r.node_cpu_s.iter().map(|c| format!("{c:.1}")).collect();
        let (node_us, redis_us) = r.per_message_us();
        println!(
            "{:>16} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>24} {:>9} {:>12.0} {:>12}",
            r.placement,
            r.pairs.acked_per_s,
            r.pairs.delivered_per_s,
            ms(r.pairs.ack_us.p50),
            ms(r.pairs.ack_us.p99),
            ms(r.pairs.deliver_us.p50),
            ms(r.pairs.deliver_us.p99),
            cpus.join(" / "),
            r.redis_cpu_s.map(|c| format!("{c:.1}s")).unwrap_or_else(|| "-".into()),
            node_us,
            redis_us.map(|u| format!("{u:.0}")).unwrap_or_else(|| "-".into()),
        );
        println!(
            "{:>16} commits {}, inserts {} ({:.1} ms each), seq conflicts {} ({:.1}% of messages)",
            "",
            r.commits,
            r.inserts,
            r.insert_s * 1000.0 / r.inserts.max(1) as f64,
            r.seq_conflicts,
            100.0 * r.seq_conflicts as f64 / r.pairs.acked.max(1) as f64
        );
        if r.pairs.stored_in_mongo != r.pairs.acked || r.pairs.lost > 0 {
            println!(
                "  (!) {} acknowledged, {} in MongoDB, {} lost",
                r.pairs.acked, r.pairs.stored_in_mongo, r.pairs.lost
            );
        }
    }
}
