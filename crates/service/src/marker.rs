//! Read marks: a message is stored unread and marked read only once it was written to a
//! connection of its recipient. The sessions hand over the ids of what they wrote; one worker
//! per process marks them in one update per round.
//!
//! A round waits [`MARK_DELAY`] after its first id: a frame handed to the socket layer reaches
//! the kernel's buffer within milliseconds, so a message is marked only once it has left the
//! process (a server killed meanwhile leaves it unread, never read and lost). A mark that
//! cannot be written leaves its messages unread: shown again, never lost.

use std::time::Duration;

use bson::{DateTime, oid::ObjectId};
use chat_dao::MessageDao;
use slog::{Logger, warn};
use tokio::sync::mpsc;

use crate::{chat::expiry, metrics::Metrics, workers::Stop};

/// How long after a write its mark waits.
pub const MARK_DELAY: Duration = Duration::from_secs(1);
/// Marks waiting at most; beyond it a mark is dropped (its message stays unread).
const QUEUE: usize = 1 << 16;
/// Tries per round before its marks are dropped.
const ATTEMPTS: u32 = 3;

/// Where the sessions hand over what they wrote.
#[derive(Clone)]
pub(crate) struct ReadMarks {
    tx: mpsc::Sender<ObjectId>,
}

impl ReadMarks {
    pub(crate) fn new() -> (ReadMarks, mpsc::Receiver<ObjectId>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (ReadMarks { tx }, rx)
    }

    /// The message was written to its recipient's connection.
    pub(crate) fn written(&self, id: ObjectId) {
        let _ = self.tx.try_send(id);
    }
}

/// The worker: marks what the sessions wrote, a round at a time, until `stop` (then at once).
pub(crate) async fn run(
    rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<ObjectId>>>,
    messages: MessageDao,
    retention_secs: u64,
    metrics: Metrics,
    log: Logger,
    stop: Stop,
) {
    let mut rx = rx.lock().await;
    let mut ids = Vec::with_capacity(4096);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            n = rx.recv_many(&mut ids, 4096) => {
                if n == 0 {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(MARK_DELAY) => {}
                }
                while let Ok(id) = rx.try_recv() {
                    ids.push(id);
                }
                metrics.queue("read-marks", rx.len());
                mark(&messages, std::mem::take(&mut ids), retention_secs, &log).await;
            }
        }
    }
    // stopping: the sessions are closed; mark what they wrote
    while let Ok(id) = rx.try_recv() {
        ids.push(id);
    }
    mark(&messages, ids, retention_secs, &log).await;
}

/// Ids per update.
const CHUNK: usize = 2000;

async fn mark(messages: &MessageDao, ids: Vec<ObjectId>, retention_secs: u64, log: &Logger) {
    for chunk in ids.chunks(CHUNK) {
        for attempt in 1..=ATTEMPTS {
            match messages.mark_read(chunk, expiry(DateTime::now(), retention_secs)).await {
                Ok(_) => break,
                Err(e) if attempt == ATTEMPTS => {
                    warn!(log, "messages not marked read; they stay unread"; "count" => chunk.len(), "error" => %e);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await,
            }
        }
    }
}
