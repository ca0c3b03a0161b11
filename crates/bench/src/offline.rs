//! `offline`: senders fill a peer's unread box while the peer is away; then the peer
//! connects, fetches the unread messages (which marks them read), and pages the history.

use std::time::{Duration, Instant};

use chat_model::ReplyCode;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Ctx,
    client::{BenchResult, User, Ws, connect},
    pairs::{Percentiles, histogram},
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct OfflineResult {
    pub senders: usize,
    pub per_sender: usize,
    pub stored: u64,
    pub stored_per_s: f64,
    pub unread_fetch_ms: Percentiles,
    pub unread_per_fetch: usize,
    pub history_page_ms: Percentiles,
    pub history_pages: u64,
}

async fn next_json(ws: &mut Ws) -> BenchResult<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t)?),
            Some(Ok(_)) => continue,
            _ => return Err("connection closed".into()),
        }
    }
}

pub async fn run(
    ctx: &Ctx,
    senders: &[User],
    peer: &User,
    per_sender: usize,
    window: usize,
) -> BenchResult<OfflineResult> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in senders {
        let mut ws = connect(&ctx.host, ctx.port, None, &s.token, peer.id).await?;
        next_json(&mut ws).await?;
        let me = s.id;
        tasks.push(tokio::spawn(async move {
            let (mut sent, mut acked) = (0usize, 0u64);
            while acked < per_sender as u64 {
                while sent < per_sender && sent - (acked as usize) < window {
                    sent += 1;
                    let f = format!(r#"{{"type":1,"content":"offline {sent} from {me}","client_msg_id":"o{sent}"}}"#);
                    ws.send(Message::text(f)).await?;
                }
                let v = next_json(&mut ws).await?;
                match serde_json::from_value::<ReplyCode>(v["code"].clone()) {
                    Ok(ReplyCode::StoredOffline | ReplyCode::Delivered) => acked += 1,
                    Ok(ReplyCode::Incoming) => {}
                    _ => return Err(format!("unexpected reply: {v}").into()),
                }
            }
            let _ = ws.close(None).await;
            Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(acked)
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await??;
    }
    let store_secs = started.elapsed().as_secs_f64();

    let (mut unread_h, mut page_h) = (histogram(), histogram());
    let mut pages = 0;
    let mut per_fetch = 0;
    for s in senders {
        let mut ws = connect(&ctx.host, ctx.port, None, &peer.token, s.id).await?;
        next_json(&mut ws).await?;
        let t = Instant::now();
        ws.send(Message::text(r#"{"type":3}"#)).await?;
        let v = next_json(&mut ws).await?;
        unread_h.record((t.elapsed().as_micros() as u64).max(1))?;
        per_fetch = v["messages"].as_array().map(Vec::len).unwrap_or(0);
        let mut before: Option<i64> = None;
        loop {
            let t = Instant::now();
            let frame = match before {
                Some(b) => format!(r#"{{"type":2,"before_seq":{b},"limit":50}}"#),
                None => r#"{"type":2,"limit":50}"#.to_string(),
            };
            ws.send(Message::text(frame)).await?;
            let v = next_json(&mut ws).await?;
            page_h.record((t.elapsed().as_micros() as u64).max(1))?;
            pages += 1;
            match v["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["seq"].as_i64()) {
                Some(seq) if seq > 1 => before = Some(seq),
                _ => break,
            }
        }
        let _ = ws.close(None).await;
    }
    let ms = |h: &hdrhistogram::Histogram<u64>| {
        let p = Percentiles::of(h);
        Percentiles { p50: p.p50 / 1000, p90: p.p90 / 1000, p99: p.p99 / 1000, p999: p.p999 / 1000, max: p.max / 1000 }
    };
    Ok(OfflineResult {
        senders: senders.len(),
        per_sender,
        stored,
        stored_per_s: stored as f64 / store_secs,
        unread_fetch_ms: ms(&unread_h),
        unread_per_fetch: per_fetch,
        history_page_ms: ms(&page_h),
        history_pages: pages,
    })
}
