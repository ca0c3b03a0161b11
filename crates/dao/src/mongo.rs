//! MongoDB: the client and database handle, with the configured write concern.

use std::{collections::HashMap, time::Duration};

use bson::Document;
use chat_model::config::{Acknowledgment, MongoSettings, WriteConcernSettings};
use futures_util::TryStreamExt as _;
use mongodb::{
    Client, Cursor, Database,
    options::{ClientOptions, WriteConcern},
};
use serde::de::DeserializeOwned;

use crate::error::{Calls, DaoError, DaoResult};

/// The driver's write concern for the configured one.
pub fn write_concern(settings: &WriteConcernSettings) -> WriteConcern {
    let w = match &settings.w {
        Acknowledgment::Nodes(n) => mongodb::options::Acknowledgment::Nodes(*n),
        Acknowledgment::Tag(tag) => mongodb::options::Acknowledgment::from(tag.as_str()),
    };
    WriteConcern::builder().w(w).journal(settings.j).build()
}

/// The write concern as a command field, for writes sent as raw commands.
pub(crate) fn write_concern_doc(settings: &WriteConcernSettings) -> DaoResult<Document> {
    Ok(bson::to_document(&write_concern(settings))?)
}

pub async fn connect(settings: &MongoSettings) -> DaoResult<Database> {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let parse = tokio::time::timeout(timeout, ClientOptions::parse(&settings.url));
    let mut opts = parse.await.map_err(|_| DaoError::Timeout(crate::Store::Mongo))??;
    opts.app_name = Some("chat".into());
    opts.server_selection_timeout = Some(timeout);
    opts.connect_timeout = Some(timeout);
    // a server that stopped answering (frozen, restarted) is checked again within a second,
    // so sends resume soon after it is back (the default waits up to 10 s)
    opts.heartbeat_freq = Some(Duration::from_secs(1));
    // every write the driver sends (inserts, updates) waits for this acknowledgement
    opts.write_concern = Some(write_concern(&settings.write_concern));
    let client = Client::with_options(opts)?;
    if settings.database.is_empty() {
        return Err(DaoError::Config("mongo.database is empty".into()));
    }
    Ok(client.database(&settings.database))
}

/// Whether a MongoDB error is a unique index refusing a write (E11000).
pub fn is_duplicate(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        ErrorKind::InsertMany(im) => im.write_errors.as_ref().is_some_and(|ws| ws.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

/// Runs an `update` command of several statements on `coll`, unordered, under `write_concern`
/// (the server's default when None): one round trip (and one journal flush) for all. Any
/// statement that failed fails the call; calling again with the same statements must be safe.
/// Returns how many documents it changed.
pub(crate) async fn update_many_statements(
    calls: &Calls,
    db: &Database,
    coll: &str,
    statements: Vec<Document>,
    write_concern: Option<Document>,
) -> DaoResult<i64> {
    if statements.is_empty() {
        return Ok(0);
    }
    let mut command = bson::doc! { "update": coll, "updates": statements, "ordered": false };
    if let Some(wc) = write_concern {
        command.insert("writeConcern", wc);
    }
    let reply = calls.run(db.run_command(command)).await?;
    let unavailable = |cause: String| DaoError::Unavailable { store: crate::error::Store::Mongo, cause };
    // a command that ran reports its failed statements in the reply, not as an error
    if let Ok(errors) = reply.get_array("writeErrors")
        && !errors.is_empty()
    {
        return Err(unavailable(format!("{coll} updates failed: {errors:?}")));
    }
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(unavailable(format!("{coll} updates' write concern: {wce}")));
    }
    Ok(reply.get_i32("nModified").map(i64::from).or_else(|_| reply.get_i64("nModified")).unwrap_or(0))
}

/// Runs a find or aggregate and collects its documents, under a deadline.
pub(crate) async fn collect<T, Q>(calls: &Calls, query: Q) -> DaoResult<Vec<T>>
where
    T: DeserializeOwned + Send + Sync + Unpin,
    Q: IntoFuture<Output = mongodb::error::Result<Cursor<T>>>,
{
    calls.run(async { query.await?.try_collect().await }).await
}

/// `{_id: <string>, <field>: <integer>}` documents as a map.
pub(crate) fn by_id(docs: Vec<Document>, field: &str) -> HashMap<String, i64> {
    docs.into_iter()
        .filter_map(|d| {
            let n = d.get_i64(field).ok().or_else(|| d.get_i32(field).ok().map(i64::from))?;
            Some((d.get_str("_id").ok()?.to_string(), n))
        })
        .collect()
}
