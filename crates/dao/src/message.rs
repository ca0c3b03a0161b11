//! Messages in MongoDB: one `messages` collection for every conversation.
//!
//! A message is stored unread; its `read` flag follows its recipient's read position in the
//! conversation (see `ConversationDao`), so one that nobody has seen is always among the unread.

use std::{collections::HashMap, time::Duration};

use bson::{DateTime, doc, oid::ObjectId};
use chat_model::MessageDoc;
use mongodb::{
    Collection, Database, IndexModel,
    options::{IndexOptions, ReadConcern},
};

use crate::{
    error::{Calls, DaoError, DaoResult, Store, StoreMetrics},
    mongo::{collect, is_duplicate},
};

pub const COLLECTION: &str = "messages";

/// How an ordered insert failed.
#[derive(Debug)]
pub struct InsertFailure {
    /// How many of the documents, from the first, are stored; None: unknown (a timeout, a lost
    /// connection, a write-concern error), and then any of them may be stored, or be stored
    /// later by the request still on its way.
    pub inserted: Option<usize>,
    /// The first failure was a unique index refusing the document.
    pub duplicate: bool,
    /// False when the insert never reached a server (none could be selected): nothing of it
    /// is stored, but it tells nothing about an earlier attempt of the same documents.
    pub sent: bool,
    pub error: DaoError,
}

/// Indexes that earlier versions made and this one replaced.
const RETIRED_INDEXES: [&str; 2] = ["to_read", "to_unread"];

/// The indexes of `messages` (the benchmark's store scenario builds the same set).
pub fn index_models() -> Vec<IndexModel> {
    let unique = |name: &str| IndexOptions::builder().name(name.to_string()).unique(true).build();
    vec![
        // one message per seq in a conversation; serves history pages and the last seq
        IndexModel::builder().keys(doc! { "conv": 1, "seq": 1 }).options(unique("conv_seq")).build(),
        // a recipient's unread messages: only unread ones are in it (read ones leave it), in
        // seq order per conversation, so an unread page and the unread counts read nothing else
        IndexModel::builder()
            .keys(doc! { "to": 1, "conv": 1, "seq": 1 })
            .options(
                IndexOptions::builder()
                    .name("to_conv_seq_unread".to_string())
                    .partial_filter_expression(doc! { "read": false })
                    .build(),
            )
            .build(),
        // the TTL: removed once expire_at has passed
        IndexModel::builder()
            .keys(doc! { "expire_at": 1 })
            .options(IndexOptions::builder().name("expire_at_ttl".to_string()).expire_after(Duration::ZERO).build())
            .build(),
        // idempotent resends: one message per (sender, client_msg_id), where one was given
        IndexModel::builder()
            .keys(doc! { "from": 1, "client_msg_id": 1 })
            .options(
                IndexOptions::builder()
                    .name("from_client_msg_id".to_string())
                    .unique(true)
                    .partial_filter_expression(doc! { "client_msg_id": { "$exists": true } })
                    .build(),
            )
            .build(),
    ]
}

#[derive(Clone)]
pub struct MessageDao {
    coll: Collection<MessageDoc>,
    db: Database,
    calls: Calls,
}

impl MessageDao {
    pub fn new(db: &Database, timeout_ms: u64, metrics: &StoreMetrics) -> Self {
        MessageDao {
            coll: db.collection(COLLECTION),
            db: db.clone(),
            calls: Calls::new(Store::Mongo, timeout_ms, metrics),
        }
    }

    /// Creates the indexes; creating an index that exists with the same options does nothing.
    pub async fn ensure_indexes(&self) -> DaoResult<()> {
        let slow = self.calls.with_timeout(self.calls.timeout_ms * 4);
        slow.run(self.coll.create_indexes(index_models())).await?;
        // the collection exists now: drop what earlier versions made and these replace
        let existing = self.calls.run(self.coll.list_index_names()).await?;
        for retired in RETIRED_INDEXES.iter().filter(|r| existing.iter().any(|e| e == *r)) {
            self.calls.run(self.coll.drop_index(*retired)).await?;
        }
        Ok(())
    }

    /// Stores messages in order (an ordered insert): on failure the first `inserted` are
    /// stored and none after them; see [`InsertFailure`] for an unknown outcome.
    pub async fn insert_ordered(&self, docs: &[MessageDoc]) -> Result<(), InsertFailure> {
        if docs.is_empty() {
            return Ok(());
        }
        match self.calls.run(self.coll.insert_many(docs).ordered(true)).await {
            Ok(_) => Ok(()),
            Err(DaoError::Mongo(e)) if matches!(*e.kind, mongodb::error::ErrorKind::ServerSelection { .. }) => {
                Err(InsertFailure { inserted: Some(0), duplicate: false, sent: false, error: DaoError::Mongo(e) })
            }
            Err(DaoError::Mongo(e)) => {
                let first = match e.kind.as_ref() {
                    // a write-concern error leaves the outcome unknown, even beside write
                    // errors: the writes before them were made, but not (yet) as durably as
                    // asked, and a failover may roll them back
                    mongodb::error::ErrorKind::InsertMany(im) if im.write_concern_error.is_none() => {
                        im.write_errors.as_ref().and_then(|ws| ws.iter().map(|w| w.index).min())
                    }
                    _ => None,
                };
                match first {
                    // ordered: the first failed write is the only one
                    Some(index) => Err(InsertFailure {
                        inserted: Some(index),
                        duplicate: is_duplicate(&e),
                        sent: true,
                        error: DaoError::Mongo(e),
                    }),
                    None => {
                        Err(InsertFailure { inserted: None, duplicate: false, sent: true, error: DaoError::Mongo(e) })
                    }
                }
            }
            Err(e) => Err(InsertFailure { inserted: None, duplicate: false, sent: true, error: e }),
        }
    }

    /// Which of `ids` are stored, read with read concern "majority": a write that only the
    /// primary has (and that a failover could roll back) is not in the answer.
    pub async fn stored_ids(&self, ids: &[ObjectId], majority: bool) -> DaoResult<Vec<ObjectId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let coll = self.coll.clone_with_type::<bson::Document>();
        let mut find = coll.find(doc! { "_id": { "$in": ids } }).projection(doc! { "_id": 1 });
        if majority {
            find = find.read_concern(ReadConcern::majority());
        }
        let docs = collect(&self.calls, find).await?;
        Ok(docs.iter().filter_map(|d| d.get_object_id("_id").ok()).collect())
    }

    /// The highest stored seq of a conversation: the last entry of the (conv, seq) index.
    pub async fn last_seq(&self, conv: &str) -> DaoResult<Option<i64>> {
        let coll = self.coll.clone_with_type::<bson::Document>();
        let query =
            coll.find_one(doc! { "conv": conv }).sort(doc! { "seq": -1 }).projection(doc! { "seq": 1, "_id": 0 });
        let found = self.calls.run(query).await?;
        Ok(found.and_then(|d| d.get_i64("seq").ok()))
    }

    /// The stored messages among (sender, client_msg_id) pairs, in one query, read with read
    /// concern "majority" (what a resend is answered with must not be a write a failover can
    /// roll back).
    pub async fn find_by_client_msg_ids(&self, pairs: &[(i64, String)]) -> DaoResult<Vec<MessageDoc>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let any: Vec<bson::Document> =
            pairs.iter().map(|(from, cmid)| doc! { "from": from, "client_msg_id": cmid }).collect();
        collect(&self.calls, self.coll.find(doc! { "$or": any }).read_concern(ReadConcern::majority())).await
    }

    /// How many stored messages each sender has in a conversation (a range of the (conv, seq)
    /// index; asked only of conversations with fewer than two senders on record, which hold
    /// few messages: those a sender may send before an answer).
    pub async fn senders_in(&self, conv: &str) -> DaoResult<HashMap<i64, u64>> {
        let pipeline =
            vec![doc! { "$match": { "conv": conv } }, doc! { "$group": { "_id": "$from", "n": { "$sum": 1 } } }];
        let docs = collect(&self.calls, self.coll.clone_with_type::<bson::Document>().aggregate(pipeline)).await?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                let from = d.get_i64("_id").ok()?;
                let n = d.get_i64("n").ok().or_else(|| d.get_i32("n").ok().map(i64::from))?;
                Some((from, u64::try_from(n).unwrap_or(0)))
            })
            .collect())
    }

    /// Up to `limit` messages of a conversation with seq below `before_seq` (or the newest)
    /// and above `after` (what the reader may see begins after it; 0: all), newest first.
    pub async fn history(
        &self,
        conv: &str,
        before_seq: Option<i64>,
        after: i64,
        limit: i64,
    ) -> DaoResult<Vec<MessageDoc>> {
        let mut seq = doc! { "$gt": after };
        if let Some(b) = before_seq {
            seq.insert("$lt", b);
        }
        collect(&self.calls, self.coll.find(doc! { "conv": conv, "seq": seq }).sort(doc! { "seq": -1 }).limit(limit))
            .await
    }

    /// The oldest `limit` messages of a group's conversation after seq `after` that `reader`
    /// did not send (their unread, when `after` is their position), oldest first.
    pub async fn others_after(&self, conv: &str, reader: i64, after: i64, limit: i64) -> DaoResult<Vec<MessageDoc>> {
        let filter = doc! { "conv": conv, "seq": { "$gt": after }, "from": { "$ne": reader } };
        collect(&self.calls, self.coll.find(filter).sort(doc! { "seq": 1 }).limit(limit)).await
    }

    /// For each (group conversation, position), how many messages after it `reader` did not
    /// send: one aggregate over a range of the (conv, seq) index per conversation.
    pub async fn others_counts_after(
        &self,
        reader: i64,
        positions: &[(String, i64)],
    ) -> DaoResult<HashMap<String, u64>> {
        if positions.is_empty() {
            return Ok(HashMap::new());
        }
        let any: Vec<bson::Document> =
            positions.iter().map(|(conv, seq)| doc! { "conv": conv, "seq": { "$gt": seq } }).collect();
        let pipeline = vec![
            doc! { "$match": { "$or": any, "from": { "$ne": reader } } },
            doc! { "$group": { "_id": "$conv", "n": { "$sum": 1 } } },
        ];
        let docs = collect(&self.calls, self.coll.clone_with_type::<bson::Document>().aggregate(pipeline)).await?;
        Ok(crate::mongo::by_id(docs, "n").into_iter().map(|(conv, n)| (conv, u64::try_from(n).unwrap_or(0))).collect())
    }

    /// The oldest `limit` unread messages of a conversation after seq `after`, sent to any of
    /// `to` (both its users: each side's unread), oldest first: one bounded range of the
    /// `to_conv_seq_unread` index per recipient (which holds only unread messages, in seq
    /// order), asked at once and merged; no read message is examined (see [`unread_filter`]).
    pub async fn unread_for(&self, to: &[i64], conv: &str, after: i64, limit: i64) -> DaoResult<Vec<MessageDoc>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let mut to = to.to_vec();
        to.sort_unstable();
        to.dedup();
        let pages = to.iter().map(|to| {
            let find = self.coll.find(unread_filter(*to, conv, doc! { "$gt": after })).sort(doc! { "seq": 1 });
            collect(&self.calls, find.limit(limit))
        });
        let mut merged: Vec<MessageDoc> =
            futures_util::future::try_join_all(pages).await?.into_iter().flatten().collect();
        merged.sort_unstable_by_key(|m| m.seq);
        merged.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(merged)
    }

    /// Marks read the unread messages of `conv` sent to `to` with seq up to `seq` (the reader's
    /// read position), and moves their expiry to `expire_at`: a range of the
    /// `to_conv_seq_unread` index. Returns how many were unread.
    pub async fn mark_read_upto(&self, conv: &str, to: i64, seq: i64, expire_at: DateTime) -> DaoResult<u64> {
        let marks = self.coll.update_many(unread_filter(to, conv, doc! { "$lte": seq }), mark_read(expire_at));
        let r = self.calls.run(marks).await?;
        Ok(r.modified_count)
    }

    /// [`Self::mark_read_upto`] for many (conversation, recipient, position) at once, in one
    /// command (the flags follow positions kept elsewhere: the server's default write concern
    /// will do, a lost flag is set again by the next move). Returns how many were unread.
    pub async fn mark_read_upto_many(&self, marks: &[(&str, i64, i64)], expire_at: DateTime) -> DaoResult<u64> {
        let statements: Vec<bson::Document> = marks
            .iter()
            .map(|(conv, to, seq)| {
                let q = unread_filter(*to, conv, doc! { "$lte": seq });
                doc! { "q": q, "u": mark_read(expire_at), "multi": true }
            })
            .collect();
        let n = crate::mongo::update_many_statements(&self.calls, &self.db, COLLECTION, statements, None).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The seqs of the first `limit` unread messages of `conv` to `to` with seq in
    /// (`after`, `max_seq`], in order (the partial unread index alone).
    pub async fn unread_seqs_between(
        &self,
        conv: &str,
        to: i64,
        after: i64,
        max_seq: i64,
        limit: i64,
    ) -> DaoResult<Vec<i64>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let coll = self.coll.clone_with_type::<bson::Document>();
        let find = coll
            .find(unread_filter(to, conv, doc! { "$gt": after, "$lte": max_seq }))
            .sort(doc! { "seq": 1 })
            .projection(doc! { "seq": 1, "_id": 0 })
            .limit(limit);
        let docs = collect(&self.calls, find).await?;
        Ok(docs.iter().filter_map(|d| d.get_i64("seq").ok()).collect())
    }

    /// Up to `limit` messages of a conversation with seq above `after_seq`, oldest first (a
    /// range of the (conv, seq) index).
    pub async fn after(&self, conv: &str, after_seq: i64, limit: i64) -> DaoResult<Vec<MessageDoc>> {
        let filter = doc! { "conv": conv, "seq": { "$gt": after_seq } };
        collect(&self.calls, self.coll.find(filter).sort(doc! { "seq": 1 }).limit(limit)).await
    }

    /// The messages at the given (conv, seq) positions (the last of each conversation).
    pub async fn find_at(&self, positions: &[(String, i64)]) -> DaoResult<Vec<MessageDoc>> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let any: Vec<bson::Document> = positions.iter().map(|(c, s)| doc! { "conv": c, "seq": s }).collect();
        collect(&self.calls, self.coll.find(doc! { "$or": any })).await
    }

    /// For each (conversation, read position), how many messages to `to` come after the
    /// position: one aggregate over a range of the (conv, seq) index per conversation.
    pub async fn counts_after(&self, to: i64, positions: &[(String, i64)]) -> DaoResult<HashMap<String, u64>> {
        if positions.is_empty() {
            return Ok(HashMap::new());
        }
        let any: Vec<bson::Document> =
            positions.iter().map(|(conv, seq)| doc! { "conv": conv, "seq": { "$gt": seq } }).collect();
        let pipeline = vec![
            doc! { "$match": { "$or": any, "to": to } },
            doc! { "$group": { "_id": "$conv", "n": { "$sum": 1 } } },
        ];
        let docs = collect(&self.calls, self.coll.clone_with_type::<bson::Document>().aggregate(pipeline)).await?;
        Ok(crate::mongo::by_id(docs, "n").into_iter().map(|(conv, n)| (conv, u64::try_from(n).unwrap_or(0))).collect())
    }

    pub async fn count(&self, conv: &str) -> DaoResult<u64> {
        self.calls.run(self.coll.count_documents(doc! { "conv": conv })).await
    }

    pub async fn get(&self, id: ObjectId) -> DaoResult<Option<MessageDoc>> {
        self.calls.run(self.coll.find_one(doc! { "_id": id })).await
    }
}

/// The unread messages of `conv` sent to `to` whose seq meets `seqs` (an operator document:
/// `{"$gt": 5}`): `{to, conv, read: false}` and, beside it in an `$and`, the seq predicate in a
/// one-branch `$or`.
///
/// MongoDB normalizes that to the flat conjunction (a one-branch `$or` is its branch, a nested
/// `$and` is flattened) before it plans, so the query is one range of the partial
/// `to_conv_seq_unread` index bounded on seq. SecantusDB routes a filter by its plain fields
/// as written: given the seq predicate among them, it reads the conversation through the
/// (conv, seq) index (measured: 47 ms a page at 20,000 messages in the conversation); given it
/// apart, it reads the unread index's entries for (to, conv) and checks the seq on those
/// (1.9 ms). Public so that the explain test asks what is sent.
pub fn unread_filter(to: i64, conv: &str, seqs: bson::Document) -> bson::Document {
    doc! { "$and": [{ "to": to, "conv": conv, "read": false }, { "$or": [{ "seq": seqs }] }] }
}

/// The update of a read mark: read, and expiring `expire_at` (a retention after the reading).
fn mark_read(expire_at: DateTime) -> bson::Document {
    doc! { "$set": { "read": true, "expire_at": expire_at } }
}
