//! Clients that hold connections without finishing requests: unfinished headers, a trickled
//! body and idle keep-alive are cut after their bounds, and under a low open-file limit a flood
//! of idle connections above `limits.max_connections` does not stop a good client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aki_wiring::Engine;
use tokio::net::TcpListener;

use crate::support::{config, model_dir};

/// A server with 1-second header and body bounds on a free port.
async fn quick_bounds_server() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut config = config();
    config.limits.header_timeout_secs = 1;
    config.limits.body_timeout_secs = 1;
    let engine = Engine::new(config).expect("a valid configuration");
    engine.start().await.expect("model loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(aki_rest::serve(listener, engine, async move {
        let _ = stopped.await;
    }));
    (address, stop)
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read and
/// when the connection ended.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&read).into_owned(), Some(started.elapsed())),
            Ok(n) => read.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&read).into_owned(), Some(started.elapsed()));
            }
            Err(_) => return (String::from_utf8_lossy(&read).into_owned(), None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_a_trickled_body_and_idle_keep_alive_are_cut_after_their_bounds() {
    let (address, _stop) = quick_bounds_server().await;
    let checks = tokio::task::spawn_blocking(move || {
        // Headers that never end.
        let mut slow_headers = TcpStream::connect(address).expect("connect");
        slow_headers.write_all(b"POST /api/v1/embed HTTP/1.1\r\nHost: x\r\n").expect("write");
        let (_, closed) = read_until_closed(&mut slow_headers, Duration::from_secs(5));
        assert!(closed.is_some_and(|t| t < Duration::from_secs(3)), "unfinished headers held {closed:?}");

        // A body that trickles: 408, and the connection closes.
        let mut slow_body = TcpStream::connect(address).expect("connect");
        let head =
            "POST /api/v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n";
        slow_body.write_all(head.as_bytes()).expect("write");
        slow_body.write_all(b"{\"texts\"").expect("write");
        let (reply, closed) = read_until_closed(&mut slow_body, Duration::from_secs(5));
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(closed.is_some(), "the trickled connection stayed open");

        // Idle keep-alive: one request answered, then the connection closes after the bound.
        let mut idle = TcpStream::connect(address).expect("connect");
        idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let (reply, closed) = read_until_closed(&mut idle, Duration::from_secs(5));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(closed.is_some_and(|t| t < Duration::from_secs(3)), "idle keep-alive held {closed:?}");
    });
    checks.await.expect("the checks pass");
}

/// `aki-rest` started under an open-file limit of `files` with `extra` flags; its port.
fn spawn_limited(files: u32, extra: &[&str]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let binary = env!("CARGO_BIN_EXE_aki-rest");
    let script = format!("ulimit -n {files} && exec \"$0\" \"$@\"");
    let child = Command::new("sh")
        .args(["-c", &script, binary, "--port", &port.to_string(), "--model", &model_dir(), "--device", "cpu"])
        .args(extra)
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aki-rest");
    (child, port)
}

/// Status line of `GET path`, answered within `within`.
fn get_status(port: u16, path: &str, within: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(within)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.lines().next().map(str::to_string)
}

#[test]
fn a_flood_of_idle_connections_under_a_low_file_limit_does_not_lock_a_good_client_out() {
    let (mut child, port) = spawn_limited(256, &[]);
    let ready = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        get_status(port, "/ready", Duration::from_secs(1)).is_some_and(|s| s.contains("200"))
    });
    assert!(ready, "the server never became ready");
    // 300 idle connections: more than the 256 files the process may open.
    let idle: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut answered = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let status = get_status(port, "/health", Duration::from_secs(1));
        if status.is_some_and(|s| s.contains("200")) && started.elapsed() < Duration::from_secs(1) {
            answered += 1;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(idle);
    assert_eq!(answered, 10, "good requests answered within a second among 300 idle connections");
}
