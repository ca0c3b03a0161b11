//! Tables on stdout, one JSON line per run in `<results>/bench.jsonl`, and the latency chart
//! `<results>/latency.svg`.

use std::{io::Write as _, path::PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use crate::{
    client::BenchResult,
    idle::IdleResult,
    offline::OfflineResult,
    pairs::PairsResult,
    store::{GroupCommitResult, StoreResult},
};

pub struct Report {
    dir: PathBuf,
    jsonl: std::fs::File,
}

fn machine() -> serde_json::Value {
    serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "at_unix": crate::client::now_ns() / 1_000_000_000,
    })
}

impl Report {
    pub fn new(dir: &std::path::Path) -> BenchResult<Self> {
        std::fs::create_dir_all(dir)?;
        let jsonl = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("bench.jsonl"))?;
        Ok(Report { dir: dir.to_path_buf(), jsonl })
    }

    fn line(&mut self, scenario: &str, value: &impl Serialize) -> BenchResult<()> {
        let v = serde_json::json!({ "scenario": scenario, "machine": machine(), "result": value });
        writeln!(self.jsonl, "{v}")?;
        Ok(())
    }

    pub fn store(&mut self, rs: &[StoreResult]) -> BenchResult<()> {
        println!(
            "\n== store: MongoDB inserts with the message shape and the server's four indexes, write concern {{w: majority, j: true}} =="
        );
        println!("{:>6} {:>8} {:>10} {:>12}", "batch", "writers", "docs", "docs/s");
        for r in rs {
            println!("{:>6} {:>8} {:>10} {:>12.0}", r.batch, r.writers, r.docs, r.docs_per_s);
            self.line("store", r)?;
        }
        Ok(())
    }

    /// The runs of the nodes scenario (printed by [`crate::nodes::print`]).
    pub fn nodes(&mut self, runs: &[crate::nodes::NodesRun]) -> BenchResult<()> {
        for r in runs {
            self.line("nodes", r)?;
        }
        Ok(())
    }

    pub fn group_commit(&mut self, r: &GroupCommitResult) -> BenchResult<()> {
        let ms = |us: u64| us as f64 / 1000.0;
        println!("\n== store alone under group commit (no server): arrival -> insert acknowledged ==");
        println!(
            "offered {:.0}/s over {} writers: stored {:.0}/s, mean batch {:.1}; latency p50 {:.2} p90 {:.2} p99 {:.2} \
             p99.9 {:.2} max {:.1} ms",
            r.offered_per_s,
            r.shards,
            r.stored_per_s,
            r.mean_batch,
            ms(r.latency_us.p50),
            ms(r.latency_us.p90),
            ms(r.latency_us.p99),
            ms(r.latency_us.p999),
            ms(r.latency_us.max)
        );
        self.line("store_group_commit", r)
    }

    pub fn pairs(&mut self, rs: &[PairsResult]) -> BenchResult<()> {
        println!("\n== pairs: both online, every message stored before its acknowledgement ==");
        println!(
            "{:>6} {:>9} {:>9} {:>9} {:>9} {:>5} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8} {:>8}",
            "pairs",
            "offered",
            "acked/s",
            "deliv/s",
            "acked",
            "lost",
            "errors",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "in mongo",
            "srv cpu",
            "bench cpu"
        );
        for r in rs {
            let ms = |us: u64| us as f64 / 1000.0;
            println!(
                "{:>6} {:>9} {:>9.0} {:>9.0} {:>9} {:>5} {:>6} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8.1} {:>9} {:>7.1}s {:>7.1}s",
                r.pairs,
                r.offered_per_s.map(|o| format!("{o:.0}")).unwrap_or_else(|| "max".into()),
                r.acked_per_s,
                r.delivered_per_s,
                r.acked,
                r.lost,
                r.errors + r.refused,
                ms(r.deliver_us.p50),
                ms(r.deliver_us.p90),
                ms(r.deliver_us.p99),
                ms(r.deliver_us.p999),
                ms(r.deliver_us.max),
                r.stored_in_mongo,
                r.server_cpu_s,
                r.bench_cpu_s,
            );
            if r.stored_in_mongo != r.acked {
                println!("   !! MongoDB holds {} messages, {} were acknowledged", r.stored_in_mongo, r.acked);
            }
            self.line("pairs", r)?;
        }
        Ok(())
    }

    pub fn group(&mut self, r: &crate::group::GroupResult) -> BenchResult<()> {
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "\n== group: {} members, {} online, {} senders offering {} msg/s; each message pushed to every other online member ==",
            r.members,
            r.online,
            r.senders,
            r.offered_per_s.map(|o| format!("{o:.0}")).unwrap_or_else(|| "max".into())
        );
        println!(
            "stored {:.0} msg/s ({} acked, {} errors); pushes delivered {:.0}/s ({}; missing {}); send -> deliver p50 {:.2} \
             p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.1} ms; send -> ack p50 {:.2} p99 {:.2} ms; server cpu {:.1}s, bench cpu {:.1}s",
            r.stored_per_s,
            r.acked,
            r.errors,
            r.pushes_per_s,
            r.delivered,
            r.missing,
            ms(r.deliver_us.p50),
            ms(r.deliver_us.p90),
            ms(r.deliver_us.p99),
            ms(r.deliver_us.p999),
            ms(r.deliver_us.max),
            ms(r.ack_us.p50),
            ms(r.ack_us.p99),
            r.server_cpu_s,
            r.bench_cpu_s,
        );
        if let (Some(a), Some(l)) = (&r.beside_alone, &r.beside_loaded) {
            println!(
                "pairs beside it ({} pairs offering {:.0} msg/s; acked {} alone, {} under the group's load): send -> ack p50 {:.2} \
                 p99 {:.2} ms alone, {:.2} / {:.2} ms under the group's load; deliver p99 {:.2} / {:.2} ms; lost {} / {}",
                a.pairs,
                a.offered_per_s.unwrap_or_default(),
                a.acked,
                l.acked,
                ms(a.ack_us.p50),
                ms(a.ack_us.p99),
                ms(l.ack_us.p50),
                ms(l.ack_us.p99),
                ms(a.deliver_us.p99),
                ms(l.deliver_us.p99),
                a.lost,
                l.lost
            );
        }
        self.line("group", r)
    }

    pub fn offline(&mut self, r: &OfflineResult) -> BenchResult<()> {
        println!("\n== offline: fill an unread box, then fetch it and page the history ==");
        println!(
            "{} senders x {} messages: {} stored at {:.0}/s; unread fetch ({} messages) p50 {} ms max {} ms; \
             history pages of 50: {} pages, p50 {} ms p99 {} ms max {} ms",
            r.senders,
            r.per_sender,
            r.stored,
            r.stored_per_s,
            r.unread_per_fetch,
            r.unread_fetch_ms.p50,
            r.unread_fetch_ms.max,
            r.history_pages,
            r.history_page_ms.p50,
            r.history_page_ms.p99,
            r.history_page_ms.max
        );
        self.line("offline", r)
    }

    pub fn idle(&mut self, r: &IdleResult) -> BenchResult<()> {
        println!("\n== idle: authenticated connections held with heartbeats ==");
        println!(
            "{} connections ({} failed) set up in {:.1}s ({:.0}/s), held {:.0}s; server RSS {} -> {} KiB = {:.2} KiB per \
             connection; {} of {} got a message at the end",
            r.connections,
            r.failed,
            r.setup_secs,
            r.setup_per_s,
            r.held_secs,
            r.server_rss_before_kib,
            r.server_rss_after_kib,
            r.server_kib_per_conn,
            r.got_message_at_end,
            r.connections
        );
        self.line("idle", r)
    }

    pub fn flood(&mut self, r: &crate::flood::FloodResult) -> BenchResult<()> {
        println!("\n== login flood: concurrent wrong-password logins ==");
        println!(
            "{} attempts over {} account(s) in {:.1}s; statuses {:?}; attempt p50 {} ms p99 {} ms max {} ms",
            r.attempts, r.accounts, r.secs, r.statuses, r.attempt_ms.p50, r.attempt_ms.p99, r.attempt_ms.max
        );
        println!(
            "meanwhile another user's GET /user/me: {} asked, {} failed, p50 {} ms p99 {} ms max {} ms",
            r.probes, r.probe_failures, r.probe_ms.p50, r.probe_ms.p99, r.probe_ms.max
        );
        println!(
            "server RSS {} KiB before, {} KiB at its peak (+{} KiB), {} KiB after",
            r.server_rss_before_kib,
            r.server_rss_peak_kib,
            r.server_rss_peak_kib.saturating_sub(r.server_rss_before_kib),
            r.server_rss_after_kib
        );
        self.line("login-flood", r)
    }

    pub fn soak(&mut self, r: &crate::soak::SoakResult) -> BenchResult<()> {
        println!("\n== soak: idle connections held while pairs chat at a steady rate ==");
        println!(
            "{} connections ({} failed) held {:.0} s while {} pairs sent {:.0}/s: {} acknowledged, {} lost, {} in MongoDB; \
             deliver p50 {:.1} ms p99 {:.1} ms",
            r.connections,
            r.failed,
            r.secs,
            r.pairs.pairs,
            r.pairs.acked_per_s,
            r.pairs.acked,
            r.pairs.lost,
            r.pairs.stored_in_mongo,
            r.pairs.deliver_us.p50 as f64 / 1000.0,
            r.pairs.deliver_us.p99 as f64 / 1000.0
        );
        println!(
            "server RSS after the {:.0} s warm-up {} KiB, at the end {} KiB ({:+.2} %), highest {} KiB; {} of {} got a \
             message at the end",
            r.warmup_secs,
            r.server_rss_start_kib,
            r.server_rss_end_kib,
            r.rss_change_pct,
            r.server_rss_max_kib,
            r.got_message_at_end,
            r.connections
        );
        self.line("soak", r)
    }

    /// Send → deliver latency percentiles against the achieved load.
    pub fn chart(&self, rs: &[PairsResult]) -> BenchResult<()> {
        let path = self.dir.join("latency.svg");
        let mut pts: Vec<&PairsResult> = rs.iter().collect();
        pts.sort_by(|a, b| a.acked_per_s.total_cmp(&b.acked_per_s));
        let x_max = pts.iter().map(|r| r.acked_per_s).fold(1.0, f64::max) * 1.05;
        let y_max = pts.iter().map(|r| r.deliver_us.p999 as f64 / 1000.0).fold(1.0, f64::max) * 1.1;
        let root = SVGBackend::new(&path, (800, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("send → deliver latency against load (both online, stored before ack)", ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart.configure_mesh().x_desc("acknowledged messages/s").y_desc("latency, ms").draw()?;
        type Pick = fn(&PairsResult) -> u64;
        let series: [(&str, Pick, RGBColor); 4] = [
            ("p50", |r| r.deliver_us.p50, BLUE),
            ("p90", |r| r.deliver_us.p90, GREEN),
            ("p99", |r| r.deliver_us.p99, RED),
            ("p99.9", |r| r.deliver_us.p999, MAGENTA),
        ];
        for (name, f, color) in series {
            let data: Vec<(f64, f64)> = pts.iter().map(|r| (r.acked_per_s, f(r) as f64 / 1000.0)).collect();
            chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        root.present()?;
        println!("\nchart: {}", path.display());
        Ok(())
    }
}
