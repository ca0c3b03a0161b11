//! Readiness samples during the drill, and the printed report.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    clients::Ledger,
    faults::Window,
    verify::{Verdict, Zeros},
};

/// When `/readyz` was asked, and its status (None when nothing answered in time).
pub type Sample = (Instant, Option<u16>);

/// `/readyz` asked four times a second.
pub struct Readiness {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Readiness {
    pub fn start(base: String) -> Readiness {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let s = samples.clone();
        let task = tokio::spawn(async move {
            let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(3)).build() else { return };
            loop {
                let status = http.get(format!("{base}/readyz")).send().await.ok().map(|r| r.status().as_u16());
                s.lock().unwrap_or_else(|p| p.into_inner()).push((Instant::now(), status));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Readiness { samples, task }
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.task.abort();
        let _ = self.task.await;
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn statuses(samples: &[Sample], from: Instant, to: Instant) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (_, s) in samples.iter().filter(|(t, _)| *t >= from && *t < to) {
        let name = s.map_or("down".to_string(), |c| c.to_string());
        if seen.last() != Some(&name) {
            seen.push(name);
        }
    }
    if seen.is_empty() { "-".into() } else { seen.join(">") }
}

fn zeros_row(z: &Zeros) -> String {
    format!(
        "{:>7} {:>4} {:>4} {:>11} {:>9} {:>8} {:>7}",
        z.missing, z.duplicates, z.gaps, z.undelivered, z.unreached, z.relogins, z.limited
    )
}

pub fn print(ledger: &Ledger, windows: &[Window], v: &Verdict, ready: &[Sample], notes: &[String]) {
    println!();
    println!(
        "{:<30} {:>6} {:>7} {:>9}  {:<20} {:<8} | {:>7} {:>4} {:>4} {:>11} {:>9} {:>8} {:>7}",
        "fault",
        "acked",
        "refused",
        "1st ack",
        "readyz during",
        "after",
        "missing",
        "dup",
        "gaps",
        "undelivered",
        "unreached",
        "relogins",
        "limited"
    );
    let mut acked_in = vec![0u64; windows.len() + 1];
    for a in ledger.acks.values() {
        acked_in[windows.iter().position(|w| w.holds(a.at)).unwrap_or(windows.len())] += 1;
    }
    let mut refused_in = vec![0u64; windows.len() + 1];
    for (t, _) in &ledger.refusals {
        refused_in[windows.iter().position(|w| w.holds(*t)).unwrap_or(windows.len())] += 1;
    }
    for (i, w) in windows.iter().enumerate() {
        let first = ledger.acks.values().filter(|a| a.at >= w.end).map(|a| a.at - w.end).min();
        let first = first.map_or("none".to_string(), |d| format!("{:.2} s", d.as_secs_f64()));
        println!(
            "{:<30} {:>6} {:>7} {:>9}  {:<20} {:<8} | {}",
            w.fault.name(),
            acked_in[i],
            refused_in[i],
            first,
            statuses(ready, w.start, w.end),
            statuses(ready, w.until - Duration::from_millis(500), w.until),
            zeros_row(&v.per_fault[i])
        );
    }
    println!(
        "{:<30} {:>6} {:>7} {:>9}  {:<20} {:<8} | {}",
        "(outside the faults)",
        acked_in[windows.len()],
        refused_in[windows.len()],
        "",
        "",
        "",
        zeros_row(&v.per_fault[windows.len()])
    );
    println!(
        "{:<30} {:>6} {:>7} {:>9}  {:<20} {:<8} | {}",
        "total",
        ledger.acks.len(),
        ledger.refusals.len(),
        "",
        "",
        "",
        zeros_row(&v.total)
    );
    let mut by_code: BTreeMap<u32, u64> = BTreeMap::new();
    for (_, c) in &ledger.refusals {
        *by_code.entry(*c).or_default() += 1;
    }
    println!();
    println!(
        "stored in MongoDB: {}; acknowledged: {}; refused (then sent again) by code: {by_code:?}",
        v.stored,
        ledger.acks.len()
    );
    println!("unanswered at the end: {}; acknowledgements that disagreed: {}", v.unanswered, v.total.inconsistent);
    for u in &v.unreached {
        println!("unreached: {u}");
    }
    if !ledger.unexpected.is_empty() {
        println!("unexpected frames: {:?}", &ledger.unexpected[..ledger.unexpected.len().min(10)]);
    }
    for n in notes {
        println!("{n}");
    }
    let ok = v.total.all_zero() && v.unanswered == 0 && ledger.unexpected.is_empty();
    println!();
    println!(
        "{}",
        if ok {
            "drill passed: every count that must be zero is zero"
        } else {
            "DRILL FAILED: a count that must be zero is not (see the table)"
        }
    );
}
