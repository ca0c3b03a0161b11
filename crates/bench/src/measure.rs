//! Figures made of two samples (CPU time spent, memory grown) and the line a long scenario
//! prints each second. A difference is only a figure when both samples exist and say what the
//! figure claims: a missing process gives no CPU figure (not 0 s), and memory per connection is
//! refused, with the reason, when the baseline had not settled or moved against the figure.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::client::{cpu_secs, rss_kib};

/// CPU time a process spends from `start` on.
pub struct CpuClock {
    pid: Option<u32>,
    at_start: Option<f64>,
}

impl CpuClock {
    pub fn start(pid: Option<u32>) -> Self {
        CpuClock { pid, at_start: pid.and_then(cpu_secs) }
    }

    pub fn of_self() -> Self {
        Self::start(Some(std::process::id()))
    }

    /// Seconds of CPU since the start; None when either sample is missing (no process id, or
    /// the process is gone).
    pub fn spent(&self) -> Option<f64> {
        Some(self.pid.and_then(cpu_secs)? - self.at_start?)
    }
}

/// `12.3s`, or `n/a` where there is no figure.
pub fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "n/a".into())
}

/// A process's resident memory, sampled until it stopped moving.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Settled {
    pub kib: u64,
    /// false: it was still moving when the wait ran out (`kib` is the last sample)
    pub settled: bool,
    pub waited_secs: f64,
}

/// Samples every 250 ms until eight samples in a row (2 s) lie within 1 % (at least 1 MiB) of
/// one another, or `max_wait` has passed. None: no such process.
pub async fn settled_rss(pid: u32, max_wait: Duration) -> Option<Settled> {
    let started = Instant::now();
    let mut window: Vec<u64> = Vec::new();
    loop {
        let kib = rss_kib(pid)?;
        window.push(kib);
        if window.len() > 8 {
            window.remove(0);
        }
        let (lo, hi) = (window.iter().copied().min().unwrap_or(kib), window.iter().copied().max().unwrap_or(kib));
        let waited_secs = started.elapsed().as_secs_f64();
        if window.len() == 8 && hi - lo <= (hi / 100).max(1024) {
            return Some(Settled { kib, settled: true, waited_secs });
        }
        if started.elapsed() >= max_wait {
            return Some(Settled { kib, settled: false, waited_secs });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Memory grown per unit between two settled samples, or why there is no such figure.
pub fn kib_per_unit(before: Option<Settled>, after: Option<Settled>, units: usize) -> Result<f64, String> {
    let (Some(before), Some(after)) = (before, after) else {
        return Err("no server process id to sample".into());
    };
    if !before.settled {
        return Err(format!(
            "the baseline was still moving after {:.0} s (last {} KiB)",
            before.waited_secs, before.kib
        ));
    }
    if !after.settled {
        return Err(format!("the memory was still moving after {:.0} s (last {} KiB)", after.waited_secs, after.kib));
    }
    if units == 0 {
        return Err("nothing was held".into());
    }
    if after.kib <= before.kib {
        return Err(format!(
            "the memory went from {} to {} KiB: the server gave back more than the connections took (the baseline \
             moved against the figure); measure on a fresh server",
            before.kib, after.kib
        ));
    }
    Ok((after.kib - before.kib) as f64 / units as f64)
}

/// Prints `line()` to stderr once a second until dropped: the progress of a long scenario
/// (stderr, so that the tables on stdout stay as they are).
pub struct Progress(tokio::task::JoinHandle<()>);

impl Progress {
    pub fn every_second(label: impl Into<String>, line: impl Fn(f64) -> String + Send + Sync + 'static) -> Self {
        let (label, line) = (label.into(), Arc::new(line));
        Progress(tokio::spawn(async move {
            let started = Instant::now();
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tick.tick().await;
                let t = started.elapsed().as_secs_f64();
                eprintln!("[{label} {t:>4.0} s] {}", line(t));
            }
        }))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kib: u64, settled: bool) -> Option<Settled> {
        Some(Settled { kib, settled, waited_secs: 3.0 })
    }

    #[test]
    fn a_difference_is_a_figure_only_when_both_samples_hold() {
        assert_eq!(kib_per_unit(s(1000, true), s(3000, true), 100), Ok(20.0));
        // the case seen: memory given back while the connections were held
        let why = kib_per_unit(s(218_132, true), s(97_504, true), 2000).unwrap_err();
        assert!(why.contains("218132 to 97504"), "{why}");
        assert!(kib_per_unit(s(1000, false), s(3000, true), 100).unwrap_err().contains("baseline"));
        assert!(kib_per_unit(s(1000, true), s(3000, false), 100).is_err());
        assert!(kib_per_unit(None, s(3000, true), 100).is_err());
        assert!(kib_per_unit(s(1000, true), s(3000, true), 0).is_err());
    }

    #[test]
    fn cpu_of_no_process_is_no_figure() {
        assert_eq!(CpuClock::start(None).spent(), None);
        assert!(CpuClock::of_self().spent().is_some_and(|s| s >= 0.0));
        assert_eq!(secs(None), "n/a");
    }
}
