//! Background workers with a lifecycle: each starts with the service, is restarted (and
//! logged, and counted) when it ends unexpectedly or panics, is reported by readiness while it
//! is down, and is stopped on request, in the order the shutdown asks for, after it has
//! drained what it holds.
//!
//! A worker is a function from a [`Stop`] token to a future: it returns when the token is
//! cancelled (after finishing its work in hand). Returning without being asked to is a crash.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use slog::{Logger, error, info};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The signal a worker watches: once cancelled, it finishes what it holds and returns.
pub type Stop = CancellationToken;

/// Slowest restart back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Entry {
    stop: Stop,
    up: bool,
    supervisor: Option<JoinHandle<()>>,
}

/// The registry of this process's workers.
#[derive(Clone)]
pub struct Workers {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    metrics: Metrics,
    log: Logger,
}

impl Workers {
    pub fn new(metrics: Metrics, log: &Logger) -> Self {
        Workers { entries: Arc::default(), metrics, log: log.new(slog::o!("component" => "workers")) }
    }

    /// Starts `name` on the current runtime and keeps it running until [`Self::stop`].
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, make: F)
    where
        F: Fn(Stop) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let stop = Stop::new();
        self.lock().insert(name.clone(), Entry { stop: stop.clone(), up: true, supervisor: None });
        let this = self.clone();
        let task_name = name.clone();
        let supervisor = tokio::spawn(async move { this.supervise(task_name, make, stop).await });
        if let Some(entry) = self.lock().get_mut(&name) {
            entry.supervisor = Some(supervisor);
        }
    }

    async fn supervise<F, Fut>(self, name: String, make: F, stop: Stop)
    where
        F: Fn(Stop) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut backoff = Duration::from_millis(100);
        loop {
            let ended = tokio::spawn(make(stop.clone())).await;
            if stop.is_cancelled() {
                return;
            }
            let how = match ended {
                Ok(()) => "ended".to_string(),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
                Err(e) => format!("was cancelled: {e}"),
            };
            self.set_up(&name, false);
            self.metrics.worker_restarts.get_or_create(&crate::metrics::WorkerLabel { worker: name.clone() }).inc();
            error!(self.log, "worker stopped unexpectedly; restarting"; "worker" => &name, "how" => how, "in_ms" => backoff.as_millis() as u64);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            self.set_up(&name, true);
            info!(self.log, "worker restarted"; "worker" => &name);
        }
    }

    /// The workers that are down now (waiting to be restarted).
    pub fn down(&self) -> Vec<String> {
        self.lock().iter().filter(|(_, e)| !e.up).map(|(n, _)| n.clone()).collect()
    }

    /// Every worker's name.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Asks the workers whose names start with `prefix` to stop, and waits until they have.
    pub async fn stop(&self, prefix: &str) {
        let handles: Vec<JoinHandle<()>> = {
            let mut entries = self.lock();
            entries
                .iter_mut()
                .filter(|(n, _)| n.starts_with(prefix))
                .filter_map(|(_, e)| {
                    e.stop.cancel();
                    e.supervisor.take()
                })
                .collect()
        };
        for h in handles {
            let _ = h.await;
        }
    }

    fn set_up(&self, name: &str, up: bool) {
        if let Some(e) = self.lock().get_mut(name) {
            e.up = up;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    #[tokio::test]
    async fn a_worker_that_panics_is_restarted_and_reported_down_meanwhile() {
        let metrics = Metrics::default();
        let workers = Workers::new(metrics.clone(), &logger());
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        workers.spawn("flaky", move |stop: Stop| {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    panic!("first run fails");
                }
                stop.cancelled().await;
            }
        });
        let down = chat_testkit_poll(|| !workers.down().is_empty()).await;
        assert!(down, "reported down after the panic");
        assert!(chat_testkit_poll(|| runs.load(Ordering::SeqCst) == 2 && workers.down().is_empty()).await);
        let label = crate::metrics::WorkerLabel { worker: "flaky".into() };
        assert_eq!(metrics.worker_restarts.get_or_create(&label).get(), 1);
        workers.stop("flaky").await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "a stopped worker is not restarted");
        assert!(workers.down().is_empty());
    }

    #[tokio::test]
    async fn stop_waits_for_the_worker_to_drain() {
        let workers = Workers::new(Metrics::default(), &logger());
        let drained = Arc::new(AtomicUsize::new(0));
        let d = drained.clone();
        workers.spawn("commit-0", move |stop: Stop| {
            let d = d.clone();
            async move {
                stop.cancelled().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                d.store(1, Ordering::SeqCst);
            }
        });
        workers.spawn("other", |stop: Stop| async move { stop.cancelled().await });
        workers.stop("commit").await;
        assert_eq!(drained.load(Ordering::SeqCst), 1);
        assert_eq!(workers.names(), vec!["commit-0".to_string(), "other".to_string()]);
        workers.stop("").await;
    }

    async fn chat_testkit_poll(done: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done()
    }
}
