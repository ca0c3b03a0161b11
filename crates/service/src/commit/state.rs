//! What a committer knows of each conversation: its last seq and who has sent in it, loaded
//! once per conversation (the last entry of the (conv, seq) index and the summary, each one
//! indexed read) and kept up to date by the committer's own commits.

use std::collections::{HashMap, HashSet};

use chat_dao::{ConvState, DaoError};
use futures_util::StreamExt as _;

use super::{Deps, worker::Pending};

/// Conversations remembered before the memory is cleared.
const CAPACITY: usize = 200_000;
/// Conversations loaded at once.
const LOADS_IN_FLIGHT: usize = 32;

#[derive(Default)]
pub(super) struct ConvStates {
    known: HashMap<String, ConvState>,
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
        let loaded: Vec<(String, Result<ConvState, DaoError>)> = futures_util::stream::iter(unknown)
            .map(|conv| async move {
                let (stored, recorded) = tokio::join!(messages.last_seq(&conv), conversations.state(&conv));
                let state = match (stored, recorded) {
                    (Ok(stored), Ok(recorded)) => {
                        Ok(ConvState { last_seq: stored.unwrap_or(0).max(recorded.last_seq), ..recorded })
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
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

    /// Forgets a conversation: its next use loads it again.
    pub(super) fn forget(&mut self, conv: &str) {
        self.known.remove(conv);
    }

    /// Who has sent in a conversation, as far as this committer knows.
    pub(super) fn senders(&self, conv: &str) -> Vec<i64> {
        self.known.get(conv).map(|s| s.senders.clone()).unwrap_or_default()
    }

    /// Records senders whose messages are now stored and recorded.
    pub(super) fn add_senders(&mut self, conv: &str, senders: &[i64]) {
        if let Some(s) = self.known.get_mut(conv) {
            for &u in senders {
                if !s.senders.contains(&u) {
                    s.senders.push(u);
                }
            }
        }
    }

    /// Gives each pending message the next seq of its conversation (all of them loaded).
    pub(super) fn assign(&mut self, pending: &mut [Pending]) {
        let mut next: HashMap<&str, i64> = HashMap::new();
        for p in pending.iter_mut() {
            let n =
                next.entry(&p.doc.conv).or_insert_with(|| self.known.get(&p.doc.conv).map(|s| s.last_seq).unwrap_or(0));
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
