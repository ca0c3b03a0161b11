//! Seq numbers: 1, 2, 3, … per conversation, with no gaps and no duplicates.
//!
//! A seq is taken by inserting the message under the unique (conv, seq) index: a seq exists
//! exactly when its message is stored, so a failed write leaves no gap, and two writers (two
//! processes) racing for one seq cannot both win — the loser reloads the last seq and tries
//! the next. Within a process, a lock per conversation orders the writers, so races happen only
//! across processes; the lock and the cached last seq are an optimisation, never what makes
//! the numbers right.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// The last seq known for each recently active conversation (0 = not loaded).
#[derive(Clone)]
pub(crate) struct SeqCache {
    convs: moka::sync::Cache<String, Arc<Mutex<i64>>>,
}

impl SeqCache {
    pub(crate) fn new(capacity: u64) -> Self {
        SeqCache { convs: moka::sync::Cache::new(capacity) }
    }

    /// Locks the conversation for one writer; the guard holds its last known seq.
    pub(crate) async fn lock(&self, conv: &str) -> OwnedMutexGuard<i64> {
        let slot = self.convs.get_with_by_ref(conv, || Arc::new(Mutex::new(0)));
        slot.lock_owned().await
    }
}
