//! Start-up, a graceful stop, and a node killed under load.

use super::*;

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

#[tokio::test]
async fn starts_serves_and_stops_gracefully_on_sigterm() {
    let ts = TestStores::new();
    let dir = std::env::temp_dir().join(ts.name());
    std::fs::create_dir_all(&dir).unwrap();
    let (mut running, port) = start(server(&ts, &dir), &dir);
    let child = &mut running.child;
    let base = format!("http://127.0.0.1:{port}");
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

#[tokio::test]
async fn a_node_killed_under_load_is_seen_gone_within_its_lease_and_the_other_serves_on() {
    let ts = TestStores::new();
    let (_one, p1) = node(&ts, "node1");
    let (mut two, p2) = node(&ts, "node2");
    let http = reqwest::Client::new();
    let base1 = format!("http://127.0.0.1:{p1}");
    let (alice, alice_token) = user(&http, &base1, "alice_01").await;
    let (bob, bob_token) = user(&http, &base1, "bob_0001").await;
    let mut a = device(p1, &alice_token).await;
    let mut b = device(p2, &bob_token).await;
    assert_eq!(ask(&mut a, serde_json::json!({"type": 1, "to": bob, "content": "hi"})).await["code"], 50004);
    assert_eq!(ask(&mut b, serde_json::json!({"type": 1, "to": alice, "content": "hello"})).await["code"], 50004);

    // alice keeps sending while node2, which holds bob, is killed (and started again at once
    // under its name: a new life, which inherits nothing of the old one's)
    let mut acked = vec![1_i64, 2];
    let kill_after = 20;
    for k in 0..60 {
        if k == kill_after {
            two.child.kill().unwrap();
            two.child.wait().unwrap();
            two = node(&ts, "node2").0;
        }
        let reply = ask(
            &mut a,
            serde_json::json!({"type": 1, "to": bob, "content": format!("m{k}"), "client_msg_id": format!("m{k}")}),
        )
        .await;
        let code = reply["code"].as_u64().unwrap();
        assert!(code == 50004 || code == 50005, "node1 serves on: {reply}");
        acked.push(reply["message"]["seq"].as_i64().unwrap());
        if k > kill_after && code == 50005 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(acked.len() < 61, "bob was seen gone within the 3 s the sends took after the kill");
    drop(b);
    // bob's peers hear he went offline (the node that claimed node2's lapsed lease told them)
    let mut offline = None;
    for _ in 0..50 {
        let f = frame(&mut a).await;
        if f["code"] == 50012 && f["user_id"] == bob {
            offline = Some(f);
            break;
        }
    }
    assert_eq!(offline.expect("a presence event")["online"], false);
    let list: serde_json::Value = http
        .get(format!("{base1}/conversations"))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["online"], false, "{list}");

    // bob comes back on node1 and catches up: every acknowledged message is there, once
    b = device(p1, &bob_token).await;
    let caught = ask(&mut b, serde_json::json!({"type": 4, "to": alice, "after_seq": 0, "limit": 500})).await;
    let seqs: Vec<i64> = caught["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, acked, "nothing acknowledged was lost, nothing is there twice");
    drop(two);
}
