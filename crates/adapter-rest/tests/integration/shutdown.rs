//! Graceful shutdown of the real binary: requests in flight when SIGTERM arrives complete,
//! then the process exits 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::model_dir;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A minimal HTTP/1.1 client: sends one request, returns the status line and body.
fn request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    request_with(port, method, path, body, "")
}

/// [`request`] with `headers` (`Name: value` lines, each ending in CRLF) added.
pub(crate) fn request_with(port: u16, method: &str, path: &str, body: &str, headers: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

fn wait_ready(port: u16, server: &mut Child) {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        assert!(server.try_wait().expect("poll").is_none(), "the server exited during start-up");
        if request(port, "GET", "/ready", "").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server was not ready within 60 s");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_aki-rest"))
        .args(["--port", &port.to_string(), "--model", &model_dir(), "--device", "cpu"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aki-rest");
    wait_ready(port, &mut server);

    // Enough work per request that they are still running when the signal arrives.
    let texts: Vec<String> = (0..48).map(|i| format!("request text {i} with several words to embed")).collect();
    let body = serde_json::json!({"texts": texts}).to_string();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || request(port, "POST", "/api/v1/embed", &body))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(killed.success());

    for client in clients {
        let reply = client.join().expect("client thread").expect("request completed");
        assert!(reply.starts_with("HTTP/1.1 200"), "in-flight request failed: {}", reply.lines().next().unwrap_or(""));
        assert!(reply.contains("\"embeddings\""));
    }
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.try_wait().expect("poll") {
            break status;
        }
        assert!(Instant::now() < until, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    assert!(request(port, "GET", "/health", "").is_err(), "no longer accepting connections");
}

/// Starts the binary on a free port with extra environment, waits until ready.
pub(crate) fn start(env: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_aki-rest"))
        .args(["--port", &port.to_string(), "--model", &model_dir(), "--device", "cpu"])
        .env("RUST_LOG", "warn")
        // Only what the test sets: none of the OpenTelemetry variables of the shell it runs in.
        .envs(crate::trace_tree::OTEL_VARIABLES.map(|name| (name, "")))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aki-rest");
    wait_ready(port, &mut server);
    (server, port)
}

pub(crate) fn terminate(server: &Child) {
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(killed.success());
}

pub(crate) fn wait_exit(server: &mut Child, within: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = server.try_wait().expect("poll") {
            return status;
        }
        assert!(Instant::now() < until, "the server did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn at_sigterm_readiness_fails_at_once_while_requests_are_served_for_the_delay() {
    let (mut server, port) = start(&[("AKI_LIMITS__SHUTDOWN_DELAY_SECS", "2")]);
    terminate(&server);
    let signalled = Instant::now();
    let until = signalled + Duration::from_secs(1);
    loop {
        let ready = request(port, "GET", "/ready", "").expect("still accepting");
        if ready.starts_with("HTTP/1.1 503") {
            break;
        }
        assert!(Instant::now() < until, "/ready still answers {}", ready.lines().next().unwrap_or(""));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(signalled.elapsed() < Duration::from_secs(1), "not ready at once");
    assert!(request(port, "GET", "/health", "").expect("alive").starts_with("HTTP/1.1 200"));
    let body = r#"{"texts": ["still served while draining"]}"#;
    let served = request(port, "POST", "/api/v1/embed", body).expect("served");
    assert!(served.starts_with("HTTP/1.1 200"), "{}", served.lines().next().unwrap_or(""));
    assert!(signalled.elapsed() < Duration::from_secs(2), "the checks ran inside the delay");
    let status = wait_exit(&mut server, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() >= Duration::from_secs(2), "accepted work for the whole delay");
}

#[test]
fn the_drain_is_cut_off_at_the_shutdown_timeout() {
    let (mut server, port) = start(&[("AKI_LIMITS__SHUTDOWN_TIMEOUT_SECS", "1")]);
    // About 250 tokens each: many seconds of work for two cores.
    let passage = "The server keeps serving the requests already admitted until the drain ends. ".repeat(18);
    let body = serde_json::json!({"texts": vec![passage; 256]}).to_string();
    let client = std::thread::spawn(move || request(port, "POST", "/api/v1/embed", &body));
    std::thread::sleep(Duration::from_millis(300));
    terminate(&server);
    let signalled = Instant::now();
    let status = wait_exit(&mut server, Duration::from_secs(20));
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "drained for {:?}, past the 1 s timeout",
        signalled.elapsed()
    );
    assert!(status.success(), "exit status {status}");
    let cut = client.join().expect("client thread");
    assert!(cut.map_or(true, |r| !r.starts_with("HTTP/1.1 200")), "the long request was cut off, not finished");
}
