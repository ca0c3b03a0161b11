//! The insert of a commit: seqs, the ordered insert, what a duplicate key means, and the
//! settling of an insert whose outcome is unknown.
//!
//! Unknown outcomes (a timeout, a lost connection, a write-concern error, a store that was
//! killed) are settled by inserting the same documents again, in order, until each is known to
//! be stored or not: a document's `_id` is its own, so inserting it again either stores it or
//! is refused as a duplicate of itself (then it was stored), and the request that is perhaps
//! still on its way can no longer store anything (its first document already exists, and the
//! insert is ordered). A read alone could not settle it: it may overtake that request.
//! Only then is anyone answered, so nobody is told "not stored" about a stored message.

use std::time::{Duration, Instant};

use chat_dao::{DaoError, InsertFailure};
use slog::warn;

use super::{
    Stored,
    worker::{Answers, Pending, Worker},
};
use crate::error::ServiceError;

/// How many times a batch retries seqs that other processes took first (each retry stores the
/// part of the batch before the conflict, so a batch always progresses).
const SEQ_ATTEMPTS: usize = 64;
/// The longest pause (ms) before a retry after a seq conflict: a random one, so that two nodes
/// writing the same conversations do not keep colliding in step.
const CONFLICT_JITTER_MAX_MS: u64 = 10;
/// The slowest retry of an insert being settled.
const SETTLE_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// After `n` documents from the front were stored, what happened to the next one.
enum Next {
    /// Nothing is left.
    Done,
    /// It conflicts with a document that is not ours (a seq or a client_msg_id taken first).
    Duplicate,
    /// It was refused for good, and so was everything after it.
    Failed(DaoError),
}

/// Whether the document behind a duplicate-key refusal is ours.
enum Ours {
    Yes,
    No,
    /// Stored on the primary but not yet on a majority (or the store did not answer).
    Unsure,
}

/// Stores `pending` (seqs assigned here), answering the sends that cannot be stored; returns
/// the stored ones, in seq order per conversation.
pub(super) async fn store(w: &mut Worker, mut pending: Vec<Pending>, answers: &mut Answers) -> Vec<Pending> {
    let mut stored = Vec::with_capacity(pending.len());
    let mut conflicts = 0;
    while !pending.is_empty() {
        if conflicts > SEQ_ATTEMPTS {
            let e = ServiceError::Internal(format!("no free seq after {SEQ_ATTEMPTS} attempts"));
            give_up(w, pending, e, answers);
            break;
        }
        pending = reload(w, pending, answers).await;
        w.states.assign(&mut pending, &w.d.hints);
        let docs: Vec<_> = pending.iter().map(|p| p.doc.clone()).collect();
        let started = Instant::now();
        let result = w.d.messages.insert_ordered(&docs).await;
        w.d.metrics.insert_seconds.observe(started.elapsed().as_secs_f64());
        let (n, next) = match result {
            Ok(()) => (pending.len(), Next::Done),
            Err(InsertFailure { inserted: Some(k), duplicate: true, .. }) if k < pending.len() => {
                match ours(w, &pending[k]).await {
                    Ours::No => (k, Next::Duplicate),
                    // ours, stored by an earlier attempt (the driver's own retry), which may have
                    // stored the rest too, or still be storing it: settled, with the same seqs
                    Ours::Yes | Ours::Unsure => {
                        let rest = pending.split_off(k);
                        stored.append(&mut pending);
                        pending = rest;
                        settle(w, &pending).await
                    }
                }
            }
            Err(InsertFailure { inserted: Some(k), error, .. }) => (k.min(pending.len()), Next::Failed(error)),
            Err(InsertFailure { inserted: None, error, .. }) => {
                warn!(w.log, "insert outcome unknown; settling it"; "count" => pending.len(), "error" => %error);
                settle(w, &pending).await
            }
        };
        let rest = pending.split_off(n);
        stored.append(&mut pending);
        pending = rest;
        match next {
            Next::Done => {}
            Next::Duplicate => {
                let (rest, seq_conflict) = after_duplicate(w, pending, answers).await;
                if seq_conflict {
                    conflicts += 1;
                    let ceiling = (conflicts as u64).min(CONFLICT_JITTER_MAX_MS);
                    let pause = u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng)) % (ceiling + 1);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                pending = rest;
            }
            Next::Failed(error) => {
                // what was written is found again by the next load
                for p in &pending {
                    w.states.forget(&p.doc.conv);
                }
                give_up(w, std::mem::take(&mut pending), error.into(), answers);
            }
        }
    }
    stored
}

/// Loads the conversations forgotten after a conflict; the sends of one that cannot be loaded
/// fail, the others go on.
async fn reload(w: &mut Worker, pending: Vec<Pending>, answers: &mut Answers) -> Vec<Pending> {
    let convs: Vec<String> = pending.iter().map(|p| p.doc.conv.clone()).collect();
    let failed = w.states.load(convs.iter().map(String::as_str), &w.d).await;
    if failed.is_empty() {
        return pending;
    }
    let (mut kept, mut lost) = (Vec::with_capacity(pending.len()), Vec::new());
    for p in pending {
        match failed.get(&p.doc.conv) {
            Some(e) => lost.push((p, ServiceError::Dao(e.shared()))),
            None => kept.push(p),
        }
    }
    for (p, e) in lost {
        give_up(w, vec![p], e, answers);
    }
    kept
}

/// Inserts `pending` again, in order, until the outcome of each is known; waits out a store
/// that does not answer. Returns how many from the front are stored, and what stopped it.
async fn settle(w: &Worker, pending: &[Pending]) -> (usize, Next) {
    w.d.metrics.unknown_outcomes.inc();
    let mut done = 0;
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        if done == pending.len() {
            return (done, Next::Done);
        }
        let docs: Vec<_> = pending[done..].iter().map(|p| p.doc.clone()).collect();
        match w.d.messages.insert_ordered(&docs).await {
            Ok(()) => return (pending.len(), Next::Done),
            // it never reached a server: it says nothing of the attempt being settled
            Err(InsertFailure { sent: false, .. }) => {}
            Err(InsertFailure { inserted: Some(k), duplicate: true, .. }) if done + k < pending.len() => {
                done += k;
                match ours(w, &pending[done]).await {
                    Ours::Yes => {
                        done += 1;
                        continue;
                    }
                    Ours::No => return (done, Next::Duplicate),
                    Ours::Unsure => {}
                }
            }
            Err(InsertFailure { inserted: Some(k), error, .. }) => {
                return ((done + k).min(pending.len()), Next::Failed(error));
            }
            Err(InsertFailure { inserted: None, error, .. }) => {
                attempts += 1;
                if attempts.is_multiple_of(10) {
                    warn!(w.log, "insert still unsettled; the senders wait"; "count" => pending.len() - done, "attempts" => attempts, "error" => %error);
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(SETTLE_BACKOFF_MAX);
    }
}

/// Whether the document a unique index refused is ours (stored by an earlier attempt): read
/// with read concern "majority", so that a write only the primary holds does not count yet.
async fn ours(w: &Worker, p: &Pending) -> Ours {
    match w.d.messages.stored_ids(&[p.doc.id], true).await {
        Ok(found) if !found.is_empty() => return Ours::Yes,
        Ok(_) => {}
        Err(_) => return Ours::Unsure,
    }
    match w.d.messages.stored_ids(&[p.doc.id], false).await {
        Ok(found) if found.is_empty() => Ours::No,
        _ => Ours::Unsure,
    }
}

/// The first of `rest` hit a unique index on another document: either its (sender,
/// client_msg_id) was stored before — it gets that message (read with read concern "majority":
/// one not yet on a majority counts as not found, and the send is tried again) — or another
/// process took its seq (then true: the conversations are loaded again and the rest tried
/// again).
async fn after_duplicate(w: &mut Worker, mut rest: Vec<Pending>, answers: &mut Answers) -> (Vec<Pending>, bool) {
    for p in &rest {
        w.states.forget(&p.doc.conv);
    }
    let first = &rest[0];
    let existing = match &first.doc.client_msg_id {
        Some(cmid) => {
            w.d.messages.find_by_client_msg_ids(&[(first.doc.from, cmid.clone())]).await.map(|f| f.into_iter().next())
        }
        None => Ok(None),
    };
    let answer = match existing {
        Ok(None) => return (rest, true),
        Ok(Some(doc)) => Ok(Stored::Existing(doc)),
        // ours is not stored (it was refused); which message holds its id is unknown
        Err(e) => Err(e.into()),
    };
    let p = rest.remove(0);
    answers.push((p.job, answer));
    (rest, false)
}

/// Answers `rest` with `error`: none of them is stored.
fn give_up(w: &Worker, rest: Vec<Pending>, error: ServiceError, answers: &mut Answers) {
    if rest.is_empty() {
        return;
    }
    warn!(w.log, "sends refused"; "count" => rest.len(), "error" => %error);
    answers.extend(rest.into_iter().map(|p| (p.job, Err(error.shared()))));
}
