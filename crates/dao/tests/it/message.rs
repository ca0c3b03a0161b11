use bson::{DateTime, oid::ObjectId};
use chat_dao::DaoError;
use chat_model::{MessageDoc, conversation_id};

use crate::daos;

/// A find's plan and figures, as `explain` gives them: the plan's text and one execution figure.
async fn explain(ts: &chat_testkit::TestStores, find: bson::Document, figure: &str) -> (String, i64) {
    let explain = run_explain(ts, find).await;
    let stats = explain.get_document("executionStats").unwrap();
    let n = stats.get_i32(figure).map(i64::from).or_else(|_| stats.get_i64(figure)).unwrap();
    (explain.to_string(), n)
}

async fn insert(daos: &chat_dao::DaoGroup, doc: &MessageDoc) -> Result<(), DaoError> {
    daos.message
        .insert_ordered(std::slice::from_ref(doc))
        .await
        .map_err(|f| if f.duplicate { DaoError::Duplicate } else { f.error })
}

fn msg(from: i64, to: i64, seq: i64, cmid: Option<&str>) -> MessageDoc {
    let now = DateTime::now();
    MessageDoc {
        id: ObjectId::new(),
        conv: conversation_id(from as u64, to as u64),
        seq,
        from,
        to: Some(to),
        group_id: None,
        kind: None,
        event: None,
        content: format!("m{seq}"),
        created_at: now,
        expire_at: DateTime::from_millis(now.timestamp_millis() + 3_600_000),
        read: false,
        client_msg_id: cmid.map(String::from),
    }
}

#[tokio::test]
async fn conv_seq_and_client_msg_id_are_unique() {
    let (_ts, _stores, daos) = daos().await;
    let m = &daos.message;
    insert(&daos, &msg(1, 2, 1, None)).await.unwrap();
    insert(&daos, &msg(2, 1, 2, None)).await.unwrap();
    assert!(matches!(insert(&daos, &msg(2, 1, 2, None)).await, Err(DaoError::Duplicate)));
    insert(&daos, &msg(1, 2, 3, Some("c1"))).await.unwrap();
    assert!(matches!(insert(&daos, &msg(1, 2, 4, Some("c1"))).await, Err(DaoError::Duplicate)));
    // the same client id from another sender is another message
    insert(&daos, &msg(2, 1, 4, Some("c1"))).await.unwrap();
    assert_eq!(m.find_by_client_msg_ids(&[(1, "c1".into())]).await.unwrap()[0].seq, 3);
    assert!(m.find_by_client_msg_ids(&[(1, "c2".into())]).await.unwrap().is_empty());
    assert_eq!(m.last_seq("1:2").await.unwrap(), Some(4));
    assert_eq!(m.last_seq("1:3").await.unwrap(), None);
    assert_eq!(m.count("1:2").await.unwrap(), 4);
}

#[tokio::test]
async fn history_pages_newest_first() {
    let (_ts, _stores, daos) = daos().await;
    for seq in 1..=25 {
        let (f, t) = if seq % 2 == 0 { (1, 2) } else { (2, 1) };
        insert(&daos, &msg(f, t, seq, None)).await.unwrap();
    }
    insert(&daos, &msg(1, 3, 1, None)).await.unwrap();
    let page: Vec<i64> = daos.message.history("1:2", None, 0, 10).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(page, (16..=25).rev().collect::<Vec<_>>());
    let page: Vec<i64> = daos.message.history("1:2", Some(6), 0, 10).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(page, vec![5, 4, 3, 2, 1]);
    assert!(daos.message.history("1:2", Some(1), 0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn unread_pages_both_sides_oldest_first_and_marking_read_takes_them_out() {
    let (_ts, _stores, daos) = daos().await;
    let mut docs = Vec::new();
    for seq in 1..=7 {
        // seq 3 is from the reader; seq 5 already read
        let mut d = if seq == 3 { msg(2, 1, seq, None) } else { msg(1, 2, seq, None) };
        d.read = seq == 5;
        docs.push(d);
    }
    daos.message.insert_ordered(&docs).await.unwrap();
    let page = daos.message.unread_for(&[2, 1], "1:2", 0, 3).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    let later = DateTime::from_millis(DateTime::now().timestamp_millis() + 10_000_000);
    // user 2's position moves to 2: their messages up to it are read, not user 1's seq 3
    assert_eq!(daos.message.mark_read_upto("1:2", 2, 2, later).await.unwrap(), 2);
    assert_eq!(daos.message.mark_read_upto("1:2", 2, 2, later).await.unwrap(), 0, "already read");
    // several positions in one command: user 2 up to 2 again (nothing), user 1 up to 2 (nothing
    // of theirs below 3)
    assert_eq!(daos.message.mark_read_upto_many(&[("1:2", 2, 2), ("1:2", 1, 2)], later).await.unwrap(), 0);
    let a = daos.message.get(docs[0].id).await.unwrap().unwrap();
    assert!(a.read);
    assert_eq!(a.expire_at, later);
    let rest = daos.message.unread_for(&[2, 1], "1:2", 0, 10).await.unwrap();
    assert_eq!(rest.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 4, 6, 7]);
    // after the last seq a connection was given
    let next = daos.message.unread_for(&[2, 1], "1:2", 4, 10).await.unwrap();
    assert_eq!(next.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![6, 7]);
    assert_eq!(daos.message.unread_for(&[1], "1:2", 0, 10).await.unwrap().len(), 1, "one side's own");
    // catch-up: after a seq, oldest first, read or not
    let after: Vec<i64> = daos.message.after("1:2", 4, 2).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(after, vec![5, 6]);
    assert!(daos.message.after("1:2", 7, 10).await.unwrap().is_empty());
}

/// An unread page and a read mark are one range of the partial index per recipient, bounded on
/// seq: no sort in memory, and no key or document examined outside the range. SecantusDB's
/// explain models mongod's planner; it parses the DAO's filter to the same query as the flat
/// conjunction (as mongod's normalizer does), but chooses a partial index by the filter as
/// written, so the plan is asked of the flat form and the parse is compared.
#[tokio::test]
async fn unread_queries_use_the_unread_index() {
    let (ts, _stores, daos) = daos().await;
    let mut docs: Vec<MessageDoc> =
        (1..=50).map(|seq| if seq % 2 == 0 { msg(1, 2, seq, None) } else { msg(2, 1, seq, None) }).collect();
    for d in docs.iter_mut().take(40) {
        d.read = true;
    }
    daos.message.insert_ordered(&docs).await.unwrap();
    // unread: 41, 43, …, 49 to user 1 and 42, 44, …, 50 to user 2; a range starting at 43 skips
    // unread entries, which an unbounded scan would examine
    let figures = |explain: &bson::Document| {
        let stats = explain.get_document("executionStats").unwrap();
        let n = |k: &str| stats.get_i32(k).map(i64::from).or_else(|_| stats.get_i64(k)).unwrap();
        (n("totalKeysExamined"), n("totalDocsExamined"), n("nReturned"))
    };
    for to in [1_i64, 2] {
        for (seqs, returned) in
            [(bson::doc! { "$gt": 43_i64 }, 3), (bson::doc! { "$gt": 43_i64, "$lte": 48_i64 }, 1 + to)]
        {
            let sent = chat_dao::message::unread_filter(to, "1:2", seqs.clone());
            let flat = bson::doc! { "to": to, "conv": "1:2", "read": false, "seq": seqs };
            let find = |filter| bson::doc! { "find": "messages", "filter": filter, "sort": { "seq": 1 }, "limit": 3 };
            assert_eq!(parsed(&ts, find(sent)).await, parsed(&ts, find(flat.clone())).await);
            let explain = run_explain(&ts, find(flat)).await;
            let text = explain.to_string();
            assert!(text.contains("to_conv_seq_unread"), "{text}");
            assert!(!text.contains("\"SORT\""), "no in-memory sort: {text}");
            assert_eq!(figures(&explain), (returned, returned, returned), "{text}");
        }
        // a mark up to 46 is the recipient's three unread entries up to it
        let sent = chat_dao::message::unread_filter(to, "1:2", bson::doc! { "$lte": 46_i64 });
        let flat = bson::doc! { "to": to, "conv": "1:2", "read": false, "seq": { "$lte": 46_i64 } };
        let update = |q| bson::doc! { "update": "messages", "updates": [{ "q": q, "u": { "$set": { "read": true } }, "multi": true }] };
        assert_eq!(parsed(&ts, update(sent)).await, parsed(&ts, update(flat.clone())).await);
        let explain = run_explain(&ts, update(flat)).await;
        let text = explain.to_string();
        assert!(text.contains("to_conv_seq_unread"), "{text}");
        let (keys, examined, _) = figures(&explain);
        assert_eq!((keys, examined), (3, 3), "{text}");
    }
    let m = &daos.message;
    let page = |after, limit| async move {
        m.unread_for(&[1, 2], "1:2", after, limit).await.unwrap().iter().map(|m| m.seq).collect::<Vec<_>>()
    };
    assert_eq!(page(0, 3).await, vec![41, 42, 43]);
    assert_eq!(page(44, 4).await, vec![45, 46, 47, 48]);
    assert!(page(0, 0).await.is_empty());
    assert_eq!(m.unread_for(&[2, 2], "1:2", 0, 10).await.unwrap().len(), 5, "a recipient once");
}

/// A command's `explain` with execution figures.
async fn run_explain(ts: &chat_testkit::TestStores, command: bson::Document) -> bson::Document {
    ts.mongo().await.run_command(bson::doc! { "explain": command, "verbosity": "executionStats" }).await.unwrap()
}

/// The query as the server parses it, before it plans.
async fn parsed(ts: &chat_testkit::TestStores, find: bson::Document) -> bson::Document {
    let explain =
        ts.mongo().await.run_command(bson::doc! { "explain": find, "verbosity": "queryPlanner" }).await.unwrap();
    explain.get_document("queryPlanner").unwrap().get_document("parsedQuery").unwrap().clone()
}

/// The seq bounds are the query's: a flag left unread below the position
/// (a flag write that failed) is passed over, not counted against the limit, and a mark moves
/// only the messages up to its position, their expiry with them.
#[tokio::test]
async fn unread_bounds_pass_over_lagging_flags_and_marks_stop_at_the_position() {
    let (_ts, _stores, daos) = daos().await;
    let m = &daos.message;
    let docs: Vec<MessageDoc> = (1..=8).map(|seq| msg(1, 2, seq, None)).collect();
    m.insert_ordered(&docs).await.unwrap();
    // the position is 3, the flags of 1..=3 lag behind it
    let page = m.unread_for(&[2], "1:2", 3, 2).await.unwrap();
    assert_eq!(page.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(m.unread_seqs_between("1:2", 2, 3, 6, 10).await.unwrap(), vec![4, 5, 6]);
    assert_eq!(m.unread_seqs_between("1:2", 2, 3, 8, 2).await.unwrap(), vec![4, 5]);
    assert!(m.unread_seqs_between("1:2", 2, 8, 9, 10).await.unwrap().is_empty());
    let later = DateTime::from_millis(DateTime::now().timestamp_millis() + 10_000_000);
    assert_eq!(m.mark_read_upto_many(&[("1:2", 2, 5)], later).await.unwrap(), 5);
    for d in &docs {
        let now = m.get(d.id).await.unwrap().unwrap();
        assert_eq!(now.read, d.seq <= 5, "seq {}", d.seq);
        assert_eq!(now.expire_at, if d.seq <= 5 { later } else { d.expire_at }, "seq {}", d.seq);
    }
    assert_eq!(
        m.unread_for(&[2], "1:2", 0, 10).await.unwrap().iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
}

#[tokio::test]
async fn indexes_are_created_idempotently() {
    let (_ts, _stores, daos) = daos().await;
    daos.message.ensure_indexes().await.unwrap();
    daos.message.ensure_indexes().await.unwrap();
}

#[tokio::test]
async fn counts_after_positions_per_conversation_and_messages_by_position() {
    let (_ts, _stores, daos) = daos().await;
    let m = &daos.message;
    let mut read = msg(3, 1, 2, None);
    read.read = true;
    for d in [msg(2, 1, 1, None), msg(2, 1, 2, None), msg(1, 2, 3, None), msg(3, 1, 1, None), read] {
        insert(&daos, &d).await.unwrap();
    }
    let positions = [("1:2".to_string(), 0), ("1:3".to_string(), 1)];
    let counts = m.counts_after(1, &positions).await.unwrap();
    assert_eq!(counts.get("1:2"), Some(&2));
    assert_eq!(counts.get("1:3"), Some(&1), "after the position, whatever the flags");
    assert_eq!(counts.len(), 2);
    assert!(m.counts_after(9, &positions).await.unwrap().is_empty());
    let mut found = m.find_at(&[("1:2".into(), 3), ("1:3".into(), 2), ("1:9".into(), 1)]).await.unwrap();
    found.sort_by(|a, b| a.conv.cmp(&b.conv));
    assert_eq!(found.iter().map(|d| (d.conv.as_str(), d.seq)).collect::<Vec<_>>(), vec![("1:2", 3), ("1:3", 2)]);
}

/// What settles an insert whose outcome is unknown: the ids that are stored.
#[tokio::test]
async fn stored_ids_tell_which_documents_exist() {
    let (_ts, _stores, daos) = daos().await;
    let a = msg(1, 2, 1, None);
    let b = msg(1, 2, 2, None);
    insert(&daos, &a).await.unwrap();
    for majority in [true, false] {
        assert_eq!(daos.message.stored_ids(&[a.id, b.id], majority).await.unwrap(), vec![a.id]);
    }
    // inserting the same documents again: the one stored is a duplicate, the rest go in
    let again = daos.message.insert_ordered(&[a.clone(), b.clone()]).await.unwrap_err();
    assert_eq!((again.inserted, again.duplicate), (Some(0), true));
    daos.message.insert_ordered(std::slice::from_ref(&b)).await.unwrap();
    assert_eq!(daos.message.stored_ids(&[a.id, b.id], true).await.unwrap().len(), 2);
}

#[tokio::test]
async fn writes_wait_for_the_configured_write_concern() {
    let (ts, stores, _daos) = daos().await;
    let expected = chat_dao::mongo::write_concern(&ts.settings.mongo.write_concern);
    assert_eq!(expected.w, Some(mongodb::options::Acknowledgment::Majority));
    assert_eq!(expected.journal, Some(true));
    assert_eq!(stores.mongo.write_concern(), Some(&expected));
}

/// A conversation's last seq, loaded when a committer first sees it, is one entry of the
/// (conv, seq) index read backwards: no sort in memory, one key and one document examined.
#[tokio::test]
async fn the_last_seq_is_read_from_the_index_backwards() {
    let (ts, _stores, daos) = daos().await;
    let docs: Vec<MessageDoc> = (1..=30).map(|seq| msg(1, 2, seq, None)).collect();
    daos.message.insert_ordered(&docs).await.unwrap();
    assert_eq!(daos.message.last_seq("1:2").await.unwrap(), Some(30));
    let find = bson::doc! { "find": "messages", "filter": { "conv": "1:2" }, "sort": { "seq": -1 }, "limit": 1 };
    let (text, keys) = explain(&ts, find, "totalKeysExamined").await;
    assert!(text.contains("\"conv_seq\"") && text.contains("\"backward\""), "{text}");
    assert!(!text.contains("\"SORT\""), "no in-memory sort: {text}");
    assert_eq!(keys, 1);
}
