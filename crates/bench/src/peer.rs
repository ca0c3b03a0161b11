//! `peer-synapse`: this server and Matrix Synapse under the same load in one run — the same
//! pairs, window and offered rates (`pairs` here; `PUT /rooms/{id}/send` and `/sync` there),
//! first as fast as each acknowledges, then at each offered rate — printed side by side.

use std::time::Duration;

use crate::{
    Ctx,
    client::BenchResult,
    pairs::{self, PairsOpts, PairsResult, Percentiles},
    report::Report,
    synapse::{self, SynapseOpts, SynapseResult},
};

pub struct PeerOpts {
    pub synapse: String,
    pub synapse_pid: Option<u32>,
    pub pairs: usize,
    pub window: usize,
    pub secs: f64,
    /// Offered rates after the maximum; empty: half of Synapse's maximum.
    pub rates: Vec<f64>,
}

/// One row: a server at one load.
struct Row {
    server: String,
    offered: Option<f64>,
    acked_per_s: f64,
    acked: u64,
    lost: u64,
    errors: u64,
    deliver: Percentiles,
    ack: Percentiles,
    cpu_s: Option<f64>,
}

impl From<&PairsResult> for Row {
    fn from(r: &PairsResult) -> Self {
        Row {
            server: "chat".into(),
            offered: r.offered_per_s,
            acked_per_s: r.acked_per_s,
            acked: r.acked,
            lost: r.lost,
            errors: r.errors + r.refused,
            deliver: r.deliver_us.clone(),
            ack: r.ack_us.clone(),
            cpu_s: r.server_cpu_s,
        }
    }
}

impl From<&SynapseResult> for Row {
    fn from(r: &SynapseResult) -> Self {
        Row {
            server: format!("Synapse {}", r.version),
            offered: r.offered_per_s,
            acked_per_s: r.acked_per_s,
            acked: r.acked,
            lost: r.lost,
            errors: r.errors,
            deliver: r.deliver_us.clone(),
            ack: r.ack_us.clone(),
            cpu_s: r.server_cpu_s,
        }
    }
}

pub async fn run(ctx: &Ctx, out: &mut Report, o: &PeerOpts) -> BenchResult<()> {
    let duration = Duration::from_secs_f64(o.secs);
    let mut rows: Vec<Row> = Vec::new();
    let mut letter = 0u8;
    let mut ours = async |rate: Option<f64>, out: &mut Report| -> BenchResult<Row> {
        letter += 1;
        let users = ctx.users((b'i' + letter % 10) as char, o.pairs * 2).await?;
        let opts =
            PairsOpts { pairs: o.pairs, rate, window: o.window, duration, size: 100, peers: 0, nodes: Vec::new() };
        let r = pairs::run(ctx, &users, &opts).await?;
        out.line("peer_chat", &r)?;
        Ok(Row::from(&r))
    };
    let mut k = 0u32;
    let mut theirs = async |rate: Option<f64>, out: &mut Report| -> BenchResult<Row> {
        k += 1;
        let opts = SynapseOpts {
            base: o.synapse.clone(),
            pid: o.synapse_pid,
            pairs: o.pairs,
            rate,
            window: o.window,
            duration,
            size: 100,
            run: ctx.run * 10 + k,
        };
        let r = synapse::run(&opts).await?;
        out.line("peer_synapse", &r)?;
        Ok(Row::from(&r))
    };
    rows.push(ours(None, out).await?);
    let synapse_max = theirs(None, out).await?;
    let rates =
        if o.rates.is_empty() { vec![(synapse_max.acked_per_s / 2.0).max(1.0).round()] } else { o.rates.clone() };
    rows.push(synapse_max);
    for rate in rates {
        rows.push(ours(Some(rate), out).await?);
        rows.push(theirs(Some(rate), out).await?);
    }
    print(o, &rows);
    Ok(())
}

fn print(o: &PeerOpts, rows: &[Row]) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "\n== beside a peer: {} pairs, both online, {} sends in flight per sender, {:.0} s per run, 100-byte messages; \
         the same machine and stores' host ==",
        o.pairs, o.window, o.secs
    );
    println!(
        "{:>22} {:>8} {:>9} {:>8} {:>5} {:>6} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>10}",
        "server",
        "offered",
        "acked/s",
        "acked",
        "lost",
        "errors",
        "dlv p50",
        "dlv p99",
        "dlv p99.9",
        "ack p50",
        "ack p99",
        "cpu",
        "cpu µs/msg"
    );
    for r in rows {
        let per_msg =
            r.cpu_s.map(|c| format!("{:.0}", c * 1e6 / r.acked.max(1) as f64)).unwrap_or_else(|| "n/a".into());
        println!(
            "{:>22} {:>8} {:>9.0} {:>8} {:>5} {:>6} {:>8.1} {:>8.1} {:>9.1} {:>8.1} {:>8.1} {:>9} {:>10}",
            r.server,
            r.offered.map(|v| format!("{v:.0}")).unwrap_or_else(|| "max".into()),
            r.acked_per_s,
            r.acked,
            r.lost,
            r.errors,
            ms(r.deliver.p50),
            ms(r.deliver.p99),
            ms(r.deliver.p999),
            ms(r.ack.p50),
            ms(r.ack.p99),
            crate::measure::secs(r.cpu_s),
            per_msg
        );
    }
    println!("(latencies in ms; cpu: the server process's own, not its store's)");
}
