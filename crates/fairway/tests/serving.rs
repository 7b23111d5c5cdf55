//! Serving HTTP: a client slow to send its headers is cut off, connections past the cap wait
//! to be accepted, and shutdown is not held up by a client following the log.

use std::time::{Duration, Instant};

use fairway::AppConfig;
use fairway::testkit::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    TcpStream::connect(address).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::with_data_dir(dir.path());
    config.header_read_timeout_secs = 1;
    let app = TestApp::start_with(config, |app| app).await;

    let mut slow = connect(&app).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let mut silent = connect(&app).await;
    let started = Instant::now();
    for (what, connection) in [("whose headers never end", &mut slow), ("that never sends a byte", &mut silent)] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), connection.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the server closes a connection {what}");
        assert!(!String::from_utf8_lossy(&rest).contains("200 OK"), "no answer to half a request");
    }
    println!("both cut off after {:?}", started.elapsed());

    // A request sent in time is answered as usual.
    let answer = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(answer.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::with_data_dir(dir.path());
    config.max_connections = 2;
    config.header_read_timeout_secs = 600;
    let app = TestApp::start_with(config, |app| app).await;

    // Two idle connections take both places.
    let first = connect(&app).await;
    let _second = connect(&app).await;
    let url = app.url("/health");
    let mut waiting = tokio::spawn(async move { reqwest::get(url).await.unwrap().status().as_u16() });
    let early = tokio::time::timeout(Duration::from_millis(700), &mut waiting).await;
    assert!(early.is_err(), "a third connection is not served while two are open");

    // One closes: the waiting request is accepted and answered.
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(20), waiting).await.expect("served once a place frees");
    assert_eq!(status.unwrap(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_following_the_log_does_not_hold_up_shutdown() {
    let app = TestApp::start().await;
    let mut follow = reqwest::get(app.url("/admin/api/events/follow")).await.unwrap();
    assert_eq!(follow.status(), 200);

    let stopped = tokio::time::timeout(Duration::from_secs(20), app.stop()).await;
    assert!(stopped.is_ok(), "the app stops although a client still follows the log");
    let ended =
        tokio::time::timeout(Duration::from_secs(20), async { while let Ok(Some(_)) = follow.chunk().await {} }).await;
    assert!(ended.is_ok(), "the follower's stream ends");
}
