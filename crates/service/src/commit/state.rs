//! What a committer knows of each conversation: its last seq, who has sent in it, and (while
//! fewer than two have) how many messages each sender has stored in it; loaded once per
//! conversation (the last entry of the (conv, seq) index, the summary, and for a conversation
//! not yet answered its few messages grouped by sender) and kept up to date by the committer's
//! own commits.

use std::collections::{HashMap, HashSet};

use chat_dao::DaoError;
use futures_util::StreamExt as _;

use super::{Deps, worker::Pending};

/// Conversations whose heard seq is kept at most before the hints are cleared.
const HINTS_CAPACITY: usize = 100_000;

/// The seqs other nodes were heard to have stored (their pushes carry them), so that a
/// committer writing a conversation that both sides' nodes write takes the next free seq at
/// once, instead of losing the race to the other node and reloading. A hint is only ever a
/// stored seq (gap-free: every seq below it is taken too), so raising to it is always safe.
#[derive(Clone, Default)]
pub(crate) struct SeqHints(std::sync::Arc<std::sync::Mutex<HashMap<std::sync::Arc<str>, i64>>>);

impl SeqHints {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<std::sync::Arc<str>, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Another node stored `seq` in `conv`.
    pub(crate) fn note(&self, conv: &std::sync::Arc<str>, seq: i64) {
        let mut m = self.lock();
        if m.len() >= HINTS_CAPACITY {
            m.clear();
        }
        let e = m.entry(conv.clone()).or_insert(0);
        *e = (*e).max(seq);
    }

    fn take(&self, conv: &str) -> Option<i64> {
        self.lock().remove(conv)
    }
}

/// Conversations remembered before the memory is cleared.
const CAPACITY: usize = 200_000;
/// Conversations loaded at once.
const LOADS_IN_FLIGHT: usize = 32;

/// One conversation as the committer knows it.
#[derive(Debug, Clone, Default)]
pub(super) struct Conv {
    pub last_seq: i64,
    pub senders: Vec<i64>,
    /// Stored messages per sender, known while the conversation has fewer than two senders
    /// (what the no-reply limit counts).
    pub stored: HashMap<i64, u64>,
}

#[derive(Default)]
pub(super) struct ConvStates {
    known: HashMap<String, Conv>,
}

impl ConvStates {
    /// Loads the conversations not known yet. Each is loaded on its own: those that fail are
    /// returned with their error, and only their sends fail.
    pub(super) async fn load<'a>(
        &mut self,
        convs: impl IntoIterator<Item = &'a str>,
        deps: &Deps,
    ) -> HashMap<String, DaoError> {
        if self.known.len() > CAPACITY {
            self.known.clear();
        }
        let unknown: HashSet<String> =
            convs.into_iter().filter(|c| !self.known.contains_key(*c)).map(String::from).collect();
        let (messages, conversations) = (&deps.messages, &deps.conversations);
        let loaded: Vec<(String, Result<Conv, DaoError>)> = futures_util::stream::iter(unknown)
            .map(|conv| async move {
                let load = async {
                    let (stored, recorded) = tokio::join!(messages.last_seq(&conv), conversations.state(&conv));
                    let (stored, recorded) = (stored?, recorded?);
                    let mut c = Conv {
                        last_seq: stored.unwrap_or(0).max(recorded.last_seq),
                        senders: recorded.senders,
                        stored: HashMap::new(),
                    };
                    // the no-reply limit's count: direct conversations only
                    if c.senders.len() < 2 && !chat_model::is_group_conversation(&conv) {
                        // from the messages themselves: also what a summary that lagged missed
                        c.stored = messages.senders_in(&conv).await?;
                        for &from in c.stored.keys() {
                            if !c.senders.contains(&from) {
                                c.senders.push(from);
                            }
                        }
                    }
                    Ok::<_, DaoError>(c)
                };
                let state = load.await;
                (conv, state)
            })
            .buffer_unordered(LOADS_IN_FLIGHT)
            .collect()
            .await;
        let mut failed = HashMap::new();
        for (conv, state) in loaded {
            match state {
                Ok(s) => {
                    self.known.insert(conv, s);
                }
                Err(e) => {
                    failed.insert(conv, e);
                }
            }
        }
        failed
    }

    /// `conv`'s last taken seq, as a store of it found (the seqs assigned after it and not
    /// stored are free again).
    pub(super) fn set_last(&mut self, conv: &str, last_seq: i64) {
        if let Some(s) = self.known.get_mut(conv) {
            s.last_seq = last_seq;
        }
    }

    /// Forgets a conversation: its next use loads it again.
    pub(super) fn forget(&mut self, conv: &str) {
        self.known.remove(conv);
    }

    /// A conversation as this committer knows it (default when not loaded).
    pub(super) fn get(&self, conv: &str) -> Conv {
        self.known.get(conv).cloned().unwrap_or_default()
    }

    /// Records a stored message of `from`.
    pub(super) fn stored(&mut self, conv: &str, from: i64) {
        if let Some(s) = self.known.get_mut(conv) {
            if !s.senders.contains(&from) {
                s.senders.push(from);
            }
            if s.senders.len() < 2 {
                *s.stored.entry(from).or_default() += 1;
            } else {
                s.stored.clear();
            }
        }
    }

    /// Gives each pending message the next seq of its conversation (all of them loaded), after
    /// the last seq this committer knows or another node was heard to have stored, whichever is
    /// higher.
    pub(super) fn assign(&mut self, pending: &mut [Pending], hints: &SeqHints) {
        let mut next: HashMap<&str, i64> = HashMap::new();
        for p in pending.iter_mut() {
            let n = next.entry(&p.doc.conv).or_insert_with(|| {
                let known = self.known.get(&p.doc.conv).map(|s| s.last_seq).unwrap_or(0);
                known.max(hints.take(&p.doc.conv).unwrap_or(0))
            });
            *n += 1;
            p.doc.seq = *n;
        }
        for (conv, seq) in next {
            if let Some(s) = self.known.get_mut(conv) {
                s.last_seq = seq;
            }
        }
    }
}
