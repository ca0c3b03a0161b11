//! Messages in MongoDB: one `messages` collection for every conversation.

use std::{collections::HashMap, time::Duration};

use bson::{DateTime, doc, oid::ObjectId};
use chat_model::MessageDoc;
use mongodb::{Collection, Database, IndexModel, options::IndexOptions};

use crate::{
    error::{DaoError, DaoResult, Store, within},
    mongo::{by_id, collect, is_duplicate},
};

pub const COLLECTION: &str = "messages";

/// How an ordered insert failed.
#[derive(Debug)]
pub struct InsertFailure {
    /// How many of the documents, from the first, are stored; None: unknown.
    pub inserted: Option<usize>,
    /// The first failure was a unique index refusing the document.
    pub duplicate: bool,
    pub error: DaoError,
}

/// The indexes of `messages` (the benchmark's store scenario builds the same set).
pub fn index_models() -> Vec<IndexModel> {
    let unique = |name: &str| IndexOptions::builder().name(name.to_string()).unique(true).build();
    vec![
        // one message per seq in a conversation; serves history pages and the last seq
        IndexModel::builder().keys(doc! { "conv": 1, "seq": 1 }).options(unique("conv_seq")).build(),
        // unread messages of a recipient: only unread ones are in it, so a message handed
        // to an online peer (stored read) costs no write here
        IndexModel::builder()
            .keys(doc! { "to": 1, "conv": 1 })
            .options(
                IndexOptions::builder()
                    .name("to_unread".to_string())
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
    timeout_ms: u64,
}

impl MessageDao {
    pub fn new(db: &Database, timeout_ms: u64) -> Self {
        MessageDao { coll: db.collection(COLLECTION), timeout_ms }
    }

    /// Creates the indexes; creating an index that exists with the same options does nothing.
    pub async fn ensure_indexes(&self) -> DaoResult<()> {
        // replaced by to_unread (deployments made before it have it)
        let _ = within(Store::Mongo, self.timeout_ms, self.coll.drop_index("to_read")).await;
        within(Store::Mongo, self.timeout_ms * 4, self.coll.create_indexes(index_models())).await.map(|_| ())
    }

    /// Stores a message. [`DaoError::Duplicate`] when its (conv, seq) or (from, client_msg_id)
    /// is taken.
    pub async fn insert(&self, doc: &MessageDoc) -> DaoResult<()> {
        match within(Store::Mongo, self.timeout_ms, self.coll.insert_one(doc)).await {
            Ok(_) => Ok(()),
            Err(DaoError::Mongo(e)) if is_duplicate(&e) => Err(DaoError::Duplicate),
            Err(e) => Err(e),
        }
    }

    /// Stores messages in order (an ordered insert): on failure the first `inserted` are
    /// stored and none after them. `inserted` is None when the outcome is unknown (a timeout
    /// or a lost connection): some may be stored.
    pub async fn insert_ordered(&self, docs: &[MessageDoc]) -> Result<(), InsertFailure> {
        if docs.is_empty() {
            return Ok(());
        }
        match within(Store::Mongo, self.timeout_ms, self.coll.insert_many(docs).ordered(true)).await {
            Ok(_) => Ok(()),
            Err(DaoError::Mongo(e)) => {
                let first = match e.kind.as_ref() {
                    mongodb::error::ErrorKind::InsertMany(im) => {
                        im.write_errors.as_ref().and_then(|ws| ws.iter().map(|w| w.index).min())
                    }
                    _ => None,
                };
                match first {
                    // ordered: the first failed write is the only one
                    Some(index) => Err(InsertFailure {
                        inserted: Some(index),
                        duplicate: is_duplicate(&e),
                        error: DaoError::Mongo(e),
                    }),
                    None => Err(InsertFailure { inserted: None, duplicate: false, error: DaoError::Mongo(e) }),
                }
            }
            Err(e) => Err(InsertFailure { inserted: None, duplicate: false, error: e }),
        }
    }

    /// The highest stored seq of each of `convs` (those with messages). Sorted by the
    /// (conv, seq) index first, so MongoDB takes each conversation's first entry of the index
    /// rather than reading all its messages.
    pub async fn last_seqs(&self, convs: &[String]) -> DaoResult<HashMap<String, i64>> {
        if convs.is_empty() {
            return Ok(HashMap::new());
        }
        let pipeline = vec![
            doc! { "$match": { "conv": { "$in": convs } } },
            doc! { "$sort": { "conv": 1, "seq": -1 } },
            doc! { "$group": { "_id": "$conv", "seq": { "$first": "$seq" } } },
        ];
        let docs = collect(self.timeout_ms, self.coll.clone_with_type::<bson::Document>().aggregate(pipeline)).await?;
        Ok(by_id(docs, "seq"))
    }

    /// The stored messages among (sender, client_msg_id) pairs, in one query.
    pub async fn find_by_client_msg_ids(&self, pairs: &[(i64, String)]) -> DaoResult<Vec<MessageDoc>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let any: Vec<bson::Document> =
            pairs.iter().map(|(from, cmid)| doc! { "from": from, "client_msg_id": cmid }).collect();
        collect(self.timeout_ms, self.coll.find(doc! { "$or": any })).await
    }

    /// Up to `limit` messages of a conversation with seq below `before_seq` (or the newest),
    /// newest first.
    pub async fn history(&self, conv: &str, before_seq: Option<i64>, limit: i64) -> DaoResult<Vec<MessageDoc>> {
        let filter = match before_seq {
            Some(b) => doc! { "conv": conv, "seq": { "$lt": b } },
            None => doc! { "conv": conv },
        };
        collect(self.timeout_ms, self.coll.find(filter).sort(doc! { "seq": -1 }).limit(limit)).await
    }

    /// Every unread message of a conversation, both directions, oldest first.
    pub async fn unread(&self, conv: &str) -> DaoResult<Vec<MessageDoc>> {
        collect(self.timeout_ms, self.coll.find(doc! { "conv": conv, "read": false }).sort(doc! { "seq": 1 })).await
    }

    /// Marks read those of `ids` sent to `to`, and moves their expiry to `expire_at`.
    pub async fn mark_read(&self, ids: &[ObjectId], to: i64, expire_at: DateTime) -> DaoResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let r = within(
            Store::Mongo,
            self.timeout_ms,
            self.coll.update_many(
                doc! { "_id": { "$in": ids }, "to": to, "read": false },
                doc! { "$set": { "read": true, "expire_at": expire_at } },
            ),
        )
        .await?;
        Ok(r.modified_count)
    }

    /// Marks messages as not handed to their recipient, and so unread: a push raced with a
    /// disconnect, or a connection ended before writing them.
    pub async fn mark_undelivered(&self, ids: &[ObjectId]) -> DaoResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        within(
            Store::Mongo,
            self.timeout_ms,
            self.coll
                .update_many(doc! { "_id": { "$in": ids } }, doc! { "$set": { "read": false, "delivered": false } }),
        )
        .await
        .map(|_| ())
    }

    /// The messages at the given (conv, seq) positions (the last of each conversation).
    pub async fn find_at(&self, positions: &[(String, i64)]) -> DaoResult<Vec<MessageDoc>> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let any: Vec<bson::Document> = positions.iter().map(|(c, s)| doc! { "conv": c, "seq": s }).collect();
        collect(self.timeout_ms, self.coll.find(doc! { "$or": any })).await
    }

    /// For each conversation, how many messages sent to `to` are unread (through the
    /// `to_unread` index: only this user's unread messages are read).
    pub async fn unread_counts(&self, to: i64) -> DaoResult<HashMap<String, u64>> {
        let pipeline = vec![
            doc! { "$match": { "to": to, "read": false } },
            doc! { "$group": { "_id": "$conv", "n": { "$sum": 1 } } },
        ];
        let docs = collect(self.timeout_ms, self.coll.clone_with_type::<bson::Document>().aggregate(pipeline)).await?;
        Ok(by_id(docs, "n").into_iter().map(|(conv, n)| (conv, u64::try_from(n).unwrap_or(0))).collect())
    }

    pub async fn count(&self, conv: &str) -> DaoResult<u64> {
        within(Store::Mongo, self.timeout_ms, self.coll.count_documents(doc! { "conv": conv })).await
    }

    pub async fn get(&self, id: ObjectId) -> DaoResult<Option<MessageDoc>> {
        within(Store::Mongo, self.timeout_ms, self.coll.find_one(doc! { "_id": id })).await
    }
}
