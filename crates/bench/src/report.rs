//! Tables on stdout, one JSON line per run in `<results>/bench.jsonl` (with the run's
//! conditions), and the latency chart (`crate::chart`).

use std::{io::Write as _, path::PathBuf};

use serde::Serialize;

use crate::{
    client::BenchResult,
    conditions::Conditions,
    idle::IdleResult,
    measure::secs,
    offline::OfflineResult,
    pairs::PairsResult,
    store::{GroupCommitResult, StoreResult},
};

pub struct Report {
    pub dir: PathBuf,
    jsonl: std::fs::File,
    conditions: Conditions,
}

fn kib(v: Option<u64>) -> String {
    v.map(|k| format!("{k} KiB")).unwrap_or_else(|| "n/a".into())
}

impl Report {
    pub fn new(dir: &std::path::Path, conditions: Conditions) -> BenchResult<Self> {
        std::fs::create_dir_all(dir)?;
        let jsonl = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("bench.jsonl"))?;
        Ok(Report { dir: dir.to_path_buf(), jsonl, conditions })
    }

    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    pub fn line(&mut self, scenario: &str, value: &impl Serialize) -> BenchResult<()> {
        let v = serde_json::json!({ "scenario": scenario, "conditions": self.conditions, "result": value });
        writeln!(self.jsonl, "{v}")?;
        Ok(())
    }

    pub fn store(&mut self, rs: &[StoreResult], source: &str) -> BenchResult<()> {
        let durable = match self.conditions.store.durable {
            Some(true) => "durable",
            Some(false) => "NOT durable",
            None => "durability not known",
        };
        println!("\n== store: MongoDB alone, inserting message documents ==");
        if let Some(r) = rs.first() {
            println!(
                "documents of {} bytes (the message shape, 100 characters of content); write concern {} ({durable}); \
                 {} writers; {} indexes besides _id, {source}:",
                r.doc_bytes,
                self.conditions.store.write_concern,
                r.writers,
                r.indexes.len()
            );
            for i in &r.indexes {
                println!("   {i}");
            }
        }
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
                "{:>6} {:>9} {:>9.0} {:>9.0} {:>9} {:>5} {:>6} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8.1} {:>9} {:>8} {:>8}",
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
                secs(r.server_cpu_s),
                secs(r.bench_cpu_s),
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
             p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.1} ms; send -> ack p50 {:.2} p99 {:.2} ms; server cpu {}, bench cpu {}",
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
            secs(r.server_cpu_s),
            secs(r.bench_cpu_s),
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
        println!(
            "\n== idle: authenticated connections held with heartbeats, on {} ==",
            if r.fresh_server { "a server of their own that had served nothing" } else { "the benchmark's server" }
        );
        let sample = |s: &Option<crate::measure::Settled>| match s {
            Some(s) if s.settled => format!("{} KiB (settled in {:.1} s)", s.kib, s.waited_secs),
            Some(s) => format!("{} KiB (still moving after {:.0} s)", s.kib, s.waited_secs),
            None => "n/a".into(),
        };
        println!(
            "{} connections ({} failed) set up in {:.1}s ({:.0}/s), held {:.0}s; {} of {} got a message at the end",
            r.connections, r.failed, r.setup_secs, r.setup_per_s, r.held_secs, r.got_message_at_end, r.connections
        );
        println!("server RSS before {}, after the hold {}", sample(&r.server_rss_before), sample(&r.server_rss_after));
        match (r.server_kib_per_conn, &r.per_conn_refused) {
            (Some(k), _) => println!("= {k:.2} KiB per connection"),
            (None, Some(why)) => println!("   !! no per-connection figure: {why}"),
            (None, None) => println!("   !! no per-connection figure"),
        }
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
        let growth = r
            .server_rss_before_kib
            .zip(r.server_rss_peak_kib)
            // the peak starts at the first sample: never below it
            .map(|(b, p)| format!("+{} KiB", p.saturating_sub(b)))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "server RSS {} before, {} at its peak ({growth}), {} after",
            kib(r.server_rss_before_kib),
            kib(r.server_rss_peak_kib),
            kib(r.server_rss_after_kib)
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
            "server RSS in the minute after the {:.0} s warm-up {}, in the last minute {} ({}), highest {} \
             (medians of one-second samples); {} of {} got a message at the end",
            r.warmup_secs,
            kib(r.server_rss_start_kib),
            kib(r.server_rss_end_kib),
            r.rss_change_pct.map(|p| format!("{p:+.2} %")).unwrap_or_else(|| "n/a".into()),
            kib(r.server_rss_max_kib),
            r.got_message_at_end,
            r.connections
        );
        self.line("soak", r)
    }

    /// The server's latency at each rate beside the store alone at the same rate.
    pub fn beside_store(&mut self, pairs: &[PairsResult], store: &[GroupCommitResult]) -> BenchResult<()> {
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "\n== latency: the server (send -> deliver) beside the store alone under group commit at the same rate =="
        );
        println!(
            "{:>9} {:>9} {:>16} {:>16} {:>18} {:>18}",
            "rate/s", "stored/s", "server p50 ms", "store p50 ms", "server p99 ms", "store p99 ms"
        );
        for (p, s) in pairs.iter().zip(store) {
            println!(
                "{:>9.0} {:>9.0} {:>16.2} {:>16.2} {:>18.2} {:>18.2}",
                p.acked_per_s,
                s.stored_per_s,
                ms(p.deliver_us.p50),
                ms(s.latency_us.p50),
                ms(p.deliver_us.p99),
                ms(s.latency_us.p99)
            );
            self.line("store_group_commit", s)?;
        }
        Ok(())
    }
}
