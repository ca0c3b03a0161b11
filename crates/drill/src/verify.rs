//! What the store holds at the end, against what the clients were told.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Instant,
};

use bson::{Document, doc};
use futures_util::TryStreamExt as _;

use crate::{clients::Ledger, faults::Window, procs::DrillResult};

/// The checks whose count must be 0, per fault window (and outside any, `None`).
#[derive(Debug, Default, Clone)]
pub struct Zeros {
    /// Acknowledged, and not in MongoDB.
    pub missing: u64,
    /// Stored more than once.
    pub duplicates: u64,
    /// Seqs absent between 1 and a conversation's highest.
    pub gaps: u64,
    /// Acknowledged "delivered" (50004), and the peer (a member of the group) never received
    /// it, live or as unread.
    pub undelivered: u64,
    /// Acknowledged, and the peer (a member of the group) never received it at all.
    pub unreached: u64,
    /// Sessions that had to log in again.
    pub relogins: u64,
    /// Sends the no-reply limit refused (every pair's conversation is answered first).
    pub limited: u64,
    /// Two acknowledgements of one send that name different messages.
    pub inconsistent: u64,
}

impl Zeros {
    pub fn all_zero(&self) -> bool {
        self.missing
            + self.duplicates
            + self.gaps
            + self.undelivered
            + self.unreached
            + self.relogins
            + self.limited
            + self.inconsistent
            == 0
    }
}

pub struct Verdict {
    pub per_fault: Vec<Zeros>,
    pub total: Zeros,
    pub stored: u64,
    pub unanswered: u64,
    /// The first few acknowledged messages a recipient never received, to look into.
    pub unreached: Vec<String>,
}

/// Unreached messages listed in the report at most.
const UNREACHED_LISTED: usize = 10;

/// The window a time falls in (the index into `windows`), if any.
fn window_of(windows: &[Window], t: Instant) -> Option<usize> {
    windows.iter().position(|w| w.holds(t))
}

pub async fn verify(mongo_url: &str, ledger: &Ledger, windows: &[Window]) -> DrillResult<Verdict> {
    let client = mongodb::Client::with_uri_str(mongo_url).await?;
    let coll = client.database("drill").collection::<Document>("messages");
    let docs: Vec<Document> = coll
        .find(doc! {})
        .projection(doc! { "_id": 1, "conv": 1, "seq": 1, "content": 1, "to": 1 })
        .await?
        .try_collect()
        .await?;
    let mut per_fault = vec![Zeros::default(); windows.len() + 1];
    let slot = |t: Instant| window_of(windows, t).unwrap_or(windows.len());
    let ids: HashSet<String> = docs.iter().filter_map(|d| d.get_object_id("_id").ok().map(|o| o.to_hex())).collect();
    // the content is the send's client_msg_id
    let mut copies: HashMap<&str, u64> = HashMap::new();
    let mut seqs: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for d in &docs {
        if let Ok(c) = d.get_str("content") {
            *copies.entry(c).or_default() += 1;
        }
        if let (Ok(conv), Ok(seq)) = (d.get_str("conv"), d.get_i64("seq")) {
            seqs.entry(conv).or_default().push(seq);
        }
    }
    let conv_of: HashMap<String, &str> =
        docs.iter().filter_map(|d| Some((d.get_object_id("_id").ok()?.to_hex(), d.get_str("conv").ok()?))).collect();
    let ack_at: HashMap<(&str, i64), Instant> =
        ledger.acks.values().filter_map(|a| conv_of.get(&a.id).map(|conv| ((*conv, a.seq), a.at))).collect();
    let mut unreached = Vec::new();
    for (cmid, ack) in &ledger.acks {
        let z = &mut per_fault[slot(ack.at)];
        if !ids.contains(&ack.id) {
            z.missing += 1;
        }
        if copies.get(cmid.as_str()).copied().unwrap_or(0) > 1 {
            z.duplicates += 1;
        }
        let reached = ack.audience.iter().all(|to| ledger.received.get(to).is_some_and(|r| r.contains(&ack.id)));
        if !reached {
            if unreached.len() < UNREACHED_LISTED {
                let missed: Vec<&u64> = ack
                    .audience
                    .iter()
                    .filter(|to| !ledger.received.get(to).is_some_and(|r| r.contains(&ack.id)))
                    .collect();
                let conv = conv_of.get(&ack.id).copied().unwrap_or("?");
                unreached.push(format!("{cmid} ({conv} seq {}, {}) never reached {missed:?}", ack.seq, ack.code));
            }
            z.unreached += 1;
            if ack.code == 50004 {
                z.undelivered += 1;
            }
        }
    }
    for (conv, list) in &mut seqs {
        list.sort_unstable();
        let mut expected = 1;
        for &s in list.iter() {
            while expected < s {
                // blamed on the window of the first acknowledged message after the gap
                let t = ack_at.get(&(*conv, s)).copied();
                per_fault[t.map_or(windows.len(), slot)].gaps += 1;
                expected += 1;
            }
            expected = s + 1;
        }
    }
    for t in &ledger.relogins {
        per_fault[slot(*t)].relogins += 1;
    }
    for (t, code) in &ledger.refusals {
        if *code == 50006 {
            per_fault[slot(*t)].limited += 1;
        }
    }
    per_fault[windows.len()].inconsistent = ledger.inconsistent;
    let mut total = Zeros::default();
    for z in &per_fault {
        total.missing += z.missing;
        total.duplicates += z.duplicates;
        total.gaps += z.gaps;
        total.undelivered += z.undelivered;
        total.unreached += z.unreached;
        total.relogins += z.relogins;
        total.limited += z.limited;
        total.inconsistent += z.inconsistent;
    }
    Ok(Verdict {
        per_fault,
        total,
        stored: docs.len() as u64,
        unanswered: ledger.outstanding.values().map(|n| *n as u64).sum(),
        unreached,
    })
}
