//! The logs as a container sees them: JSON lines on standard output, actix's own records among
//! them, and a request id on every request.

use super::*;

#[test]
fn every_sink_off_is_an_error_at_start_up() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let out = server(&ts, &dir).env("CHAT__LOG__TERMINAL", "false").env("CHAT__LOG__DIR", "").output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("logging is off"), "{out:?}");
}

#[tokio::test]
async fn json_lines_on_stdout_carry_actix_records_and_request_ids() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = server(&ts, &dir);
    cmd.env("CHAT__LOG__FORMAT", "json")
        .env("CHAT__LOG__DIR", "")
        .env("CHAT__LOG__LEVEL", "debug")
        .stdout(Stdio::piped());
    let mut running = Running { child: cmd.spawn().unwrap(), dir: dir.clone() };
    let stdout = running.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let port = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("a listening record");
        let record: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        lines.push(record.clone());
        if record["msg"] == "listening" {
            break record["addr"].as_str().unwrap().rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let res = http.get(format!("{base}/user/me")).header("X-Request-Id", "req-42").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.headers()["x-request-id"], "req-42", "the client's id is answered");
    let res = http.get(format!("{base}/ping")).header("X-Request-Id", "forged\" id=\"x").send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID replaces an id that could forge log lines: {generated}");

    // the records of both requests arrive
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let seen = |lines: &[serde_json::Value], id: &str| lines.iter().any(|r| r["request_id"] == id);
    while !(seen(&lines, "req-42") && seen(&lines, &generated)) {
        assert!(std::time::Instant::now() < deadline, "request records: {lines:#?}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
    }
    let request = lines.iter().find(|r| r["request_id"] == "req-42").unwrap();
    assert_eq!((request["path"].as_str(), request["status"].as_u64()), (Some("/user/me"), Some(401)), "{request}");
    // actix-server's own start-up record (through `tracing` and `log`) is among them
    assert!(
        lines.iter().any(|r| r["source"] == "actix" && r["msg"].as_str().is_some_and(|m| m.starts_with("starting"))),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|r| r["ts"].is_string() && r["level"].is_string()), "{lines:#?}");
    drop(running);
}
