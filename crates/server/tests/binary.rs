//! The binary as a user runs it: configuration from files and `CHAT__` variables, start-up
//! against the real stores, and a graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use chat_testkit::TestStores;

fn config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
}

/// The binary with the test's own stores, configured through `CHAT__` variables only.
fn server(ts: &TestStores, work_dir: &Path) -> Command {
    let s = &ts.settings;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    cmd.arg("--config")
        .arg(config_dir())
        .current_dir(work_dir)
        .env("CHAT__SERVER__PORT", "0")
        .env("CHAT__SERVER__WORKERS", "1")
        .env("CHAT__MYSQL__URL", &s.mysql.url)
        .env("CHAT__REDIS__URL", &s.redis.url)
        .env("CHAT__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("CHAT__MONGO__URL", &s.mongo.url)
        .env("CHAT__MONGO__DATABASE", &s.mongo.database)
        .env_remove("APP_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_bad_setting_from_the_environment_stops_start_up_with_a_clear_error() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let out = server(&ts, &dir).env("CHAT__LOG__LEVEL", "loud").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loud"), "{err}");
    let out = server(&ts, &dir).env("CHAT__SERVER__PROT", "1").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prot"), "an unknown key is an error");
}

/// The running server and its working folder: killed and removed however the test ends.
struct Running {
    child: Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn starts_serves_and_stops_gracefully_on_sigterm() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let mut running = Running { child: server(&ts, &dir).spawn().unwrap(), dir: dir.clone() };
    let child = &mut running.child;
    let stderr = child.stderr.take().unwrap();
    // the terminal log says where it listens: "... listening, addr: 127.0.0.1:PORT ..."
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut port = None;
    while port.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("a listening line");
        assert!(!line.contains("password"), "{line}");
        port = line
            .split("addr: 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u16>().ok());
    }
    let base = format!("http://127.0.0.1:{}", port.unwrap());
    let ping: serde_json::Value = reqwest::get(format!("{base}/ping")).await.unwrap().json().await.unwrap();
    assert_eq!(ping["data"], "SUCCESS");
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status().as_u16(), 200);

    // the JSON log file was made in the working folder's log/
    let log = std::fs::read_to_string(dir.join("log/chat.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"msg\":\"listening\"")), "{log}");

    let kill = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(kill.success());
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.expect("stopped within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}
