//! The real listener: HTTP/1.1 over a socket, and graceful shutdown.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request on a fresh connection with `Connection: close`: (status line, body).
async fn request(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[tokio::test]
async fn serves_http_and_stops_gracefully() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(lagless_admin::serve(
        listener,
        common::context(),
        shutdown.clone(),
    ));

    let (status, body) = request(addr, "/health").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, r#"{"status":"ok"}"#);
    let (status, body) = request(addr, "/explain?sql=DELETE%20FROM%20t").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["target"], "primary");
    let (status, _) = request(addr, "/missing").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // An idle keep-alive connection does not hold the shutdown up.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));

    let started = tokio::time::Instant::now();
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve stops")
        .unwrap();
    assert!(result.is_ok());
    assert!(
        started.elapsed() < lagless_admin::SHUTDOWN_GRACE,
        "stopped by the grace deadline, not gracefully: {:?}",
        started.elapsed()
    );
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}
