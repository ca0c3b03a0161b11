//! Conversations in MongoDB: one small document per conversation, `conversations`:
//! `{_id: conv, users: [low, high], senders: [...], last_seq, last_at, read: {<user>: seq}}`
//! (a group's has no `users` nor `senders`: its members are in MySQL).
//! `read` holds each user's read position, the truth of what they have seen (it only grows,
//! and never past `last_seq`); the messages' `read` flags follow it. It outlives its
//! messages, so seq numbers keep rising after the TTL index removed the newest messages (or all
//! of them); it lists a user's conversations, newest first, without scanning the messages; and
//! `senders` (who has ever sent in it) is the durable record that a peer answered, which lifts
//! the no-reply limit whatever Redis has lost.
//!
//! The committer writes it as part of each commit, before anyone is answered.

use std::collections::HashMap;

use bson::{DateTime, Document, doc};
use chat_model::config::{MongoSettings, WriteConcernSettings};
use mongodb::{Collection, Database, IndexModel, options::IndexOptions};

use crate::{
    error::{Calls, DaoResult, Store, StoreMetrics},
    mongo::{collect, update_many_statements, write_concern_doc},
};

pub const COLLECTION: &str = "conversations";

/// A conversation's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub conv: String,
    pub users: Vec<i64>,
    pub last_seq: i64,
    pub last_at: DateTime,
    /// The users' read positions (absent: 0).
    pub read: HashMap<i64, i64>,
}

impl ConversationSummary {
    /// `user`'s read position.
    pub fn read_seq(&self, user: i64) -> i64 {
        self.read.get(&user).copied().unwrap_or(0)
    }
}

/// The read positions of a document's `read` field.
fn positions(d: &Document) -> HashMap<i64, i64> {
    d.get_document("read")
        .map(|r| r.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v.as_i64()?))).collect())
        .unwrap_or_default()
}

fn summary(d: &Document) -> Option<ConversationSummary> {
    Some(ConversationSummary {
        conv: d.get_str("_id").ok()?.to_string(),
        users: d.get_array("users").map(|a| a.iter().filter_map(|u| u.as_i64()).collect()).unwrap_or_default(),
        last_seq: d.get_i64("last_seq").ok()?,
        last_at: *d.get_datetime("last_at").ok()?,
        read: positions(d),
    })
}

/// What the committer needs of a conversation it has not seen yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvState {
    /// The highest seq recorded (0 when none).
    pub last_seq: i64,
    /// Everyone who has sent a message in it.
    pub senders: Vec<i64>,
}

/// One conversation's part of a commit: its newest stored message and who sent in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryUpdate {
    pub conv: String,
    /// A direct conversation's two users; None for a group's.
    pub users: Option<[i64; 2]>,
    pub seq: i64,
    pub at: DateTime,
    pub senders: Vec<i64>,
}

#[derive(Clone)]
pub struct ConversationDao {
    coll: Collection<Document>,
    db: Database,
    write_concern: WriteConcernSettings,
    calls: Calls,
}

impl ConversationDao {
    pub fn new(db: &Database, settings: &MongoSettings, metrics: &StoreMetrics) -> Self {
        ConversationDao {
            coll: db.collection(COLLECTION),
            db: db.clone(),
            write_concern: settings.write_concern.clone(),
            calls: Calls::new(Store::Mongo, settings.timeout_ms, metrics),
        }
    }

    pub async fn ensure_indexes(&self) -> DaoResult<()> {
        let model = IndexModel::builder()
            .keys(doc! { "users": 1, "last_at": -1 })
            .options(IndexOptions::builder().name("users_last_at".to_string()).build())
            .build();
        let slow = self.calls.with_timeout(self.calls.timeout_ms * 4);
        slow.run(self.coll.create_index(model)).await.map(|_| ())
    }

    /// The recorded seq and senders of a conversation (default when it has no summary).
    pub async fn state(&self, conv: &str) -> DaoResult<ConvState> {
        let query = self.coll.find_one(doc! { "_id": conv }).projection(doc! { "last_seq": 1, "senders": 1 });
        let Some(d) = self.calls.run(query).await? else { return Ok(ConvState::default()) };
        Ok(ConvState {
            last_seq: d.get_i64("last_seq").unwrap_or(0),
            senders: d
                .get_array("senders")
                .map(|a| a.iter().filter_map(bson::Bson::as_i64).collect())
                .unwrap_or_default(),
        })
    }

    /// Records a commit's conversations in one command: raises `last_seq` and `last_at` (never
    /// lowers them, so a repeat or a late write is harmless) and adds the senders. Acknowledged
    /// under the configured write concern; any statement that failed fails the whole call, and
    /// calling again with the same updates is safe.
    pub async fn record(&self, updates: &[SummaryUpdate]) -> DaoResult<()> {
        let statements: Vec<Document> = updates
            .iter()
            .map(|u| {
                let mut update = doc! {
                    "$max": { "last_seq": u.seq, "last_at": u.at },
                    "$addToSet": { "senders": { "$each": &u.senders } },
                };
                if let Some([a, b]) = u.users {
                    update.insert("$setOnInsert", doc! { "users": [a, b] });
                }
                doc! { "q": { "_id": &u.conv }, "u": update, "upsert": true }
            })
            .collect();
        self.write(statements).await
    }

    /// The user's conversations, the most recently active first.
    pub async fn list_for(&self, user: i64, limit: i64) -> DaoResult<Vec<ConversationSummary>> {
        let query = self.coll.find(doc! { "users": user }).sort(doc! { "last_at": -1 }).limit(limit);
        let docs = collect(&self.calls, query).await?;
        Ok(docs.iter().filter_map(summary).collect())
    }

    /// The summaries of the given conversations (those that have one), in no order, with the
    /// read position of `reader` only (a big group's summary holds every member's).
    pub async fn find_many(&self, convs: &[String], reader: i64) -> DaoResult<Vec<ConversationSummary>> {
        if convs.is_empty() {
            return Ok(Vec::new());
        }
        let mut projection = doc! { "users": 1, "last_seq": 1, "last_at": 1 };
        projection.insert(format!("read.{reader}"), 1);
        let docs =
            collect(&self.calls, self.coll.find(doc! { "_id": { "$in": convs } }).projection(projection)).await?;
        Ok(docs.iter().filter_map(summary).collect())
    }

    /// Moves `user`'s read position in `conv` to `seq`, never backwards and never past the
    /// conversation's last seq; acknowledged under the configured write concern. Returns the
    /// position before and after, or None when the conversation has no messages on record.
    pub async fn advance(&self, conv: &str, user: i64, seq: i64) -> DaoResult<Option<(i64, i64)>> {
        let field = format!("read.{user}");
        let query = self.coll.find_one(doc! { "_id": conv }).projection(doc! { "last_seq": 1 });
        let Some(d) = self.calls.run(query).await? else { return Ok(None) };
        // last_seq only grows: a position clamped to what was read is never past the last seq
        let target = seq.min(d.get_i64("last_seq").unwrap_or(0));
        let update = self
            .coll
            .find_one_and_update(doc! { "_id": conv }, doc! { "$max": { &field: target } })
            .projection(doc! { &field: 1 })
            .return_document(mongodb::options::ReturnDocument::Before)
            .write_concern(crate::mongo::write_concern(&self.write_concern));
        let before = self.calls.run(update).await?;
        Ok(before.map(|d| {
            let before = positions(&d).get(&user).copied().unwrap_or(0);
            (before, before.max(target))
        }))
    }

    /// Moves read positions, each (conversation, user, seq) to at least seq, in one command
    /// under the configured write concern. The seqs must be stored ones (they are not clamped).
    pub async fn advance_many(&self, marks: &[(&str, i64, i64)]) -> DaoResult<()> {
        let statements: Vec<Document> = marks
            .iter()
            .map(|(conv, user, seq)| {
                let mut max = Document::new();
                max.insert(format!("read.{user}"), *seq);
                doc! { "q": { "_id": *conv }, "u": { "$max": max } }
            })
            .collect();
        self.write(statements).await
    }

    /// The last seq on record and the read positions of `conv` (0 and none without a summary).
    pub async fn read_state(&self, conv: &str) -> DaoResult<(i64, HashMap<i64, i64>)> {
        let query = self.coll.find_one(doc! { "_id": conv }).projection(doc! { "last_seq": 1, "read": 1 });
        Ok(self
            .calls
            .run(query)
            .await?
            .map(|d| (d.get_i64("last_seq").unwrap_or(0), positions(&d)))
            .unwrap_or_default())
    }

    /// The read positions in `conv` (empty when it has no summary).
    pub async fn read_positions(&self, conv: &str) -> DaoResult<HashMap<i64, i64>> {
        Ok(self.read_state(conv).await?.1)
    }

    /// Runs update statements on `conversations` in one command, under the configured write
    /// concern.
    async fn write(&self, statements: Vec<Document>) -> DaoResult<()> {
        let wc = write_concern_doc(&self.write_concern)?;
        update_many_statements(&self.calls, &self.db, COLLECTION, statements, Some(wc)).await.map(|_| ())
    }
}
