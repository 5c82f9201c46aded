//! Connections that hold the gRPC server without working: a flood of idle TCP connections
//! above `limits.max_connections` does not stop a good client, and a stream that sends nothing
//! is ended after `limits.stream_idle_secs`.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use aki_grpc::pb;
use tonic::Code;

use crate::support::{config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_lock_a_good_client_out() {
    let mut config = config();
    config.limits.max_connections = 50;
    let server = start(config).await;
    let address = server.address;
    // 120 connections that never speak HTTP/2, well over the 50 held.
    let idle = tokio::task::spawn_blocking(move || {
        (0..120).filter_map(|_| TcpStream::connect(address).ok()).collect::<Vec<_>>()
    })
    .await
    .expect("connects");
    assert!(idle.len() >= 100, "only {} connections opened", idle.len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let mut client = tokio::time::timeout(Duration::from_secs(2), server.client()).await.expect("connects in time");
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            client.embed(pb::EmbedRequest { texts: vec!["a good client".into()], ..Default::default() }),
        )
        .await
        .expect("answered in time")
        .expect("embedded");
        assert_eq!(reply.into_inner().embeddings.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // Room was made by closing idle connections: at least the 70 over the limit read as ended.
    let ended = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        idle.into_iter()
            .filter(|mut stream| {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                let mut buffer = [0u8; 256];
                // The server's HTTP/2 settings may come first; then the end.
                (0..4).any(|_| matches!(stream.read(&mut buffer), Ok(0)))
            })
            .count()
    })
    .await
    .expect("reads");
    assert!(ended >= 70, "only {ended} idle connections were closed to make room");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_sends_nothing_is_ended_after_its_bound() {
    let mut config = config();
    config.limits.stream_idle_secs = 1;
    let server = start(config).await;
    let mut client = server.client().await;
    // One message, then silence: the stream answers it, then ends with DEADLINE_EXCEEDED.
    let (sender, receiver) = tokio::sync::mpsc::channel::<pb::EmbedRequest>(1);
    sender.send(pb::EmbedRequest { texts: vec!["one".into()], ..Default::default() }).await.expect("send");
    let started = Instant::now();
    let mut answers =
        client.embed_stream(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.expect("stream").into_inner();
    let first = answers.message().await.expect("first answer").expect("an answer");
    assert!(first.error.is_none() && first.embeddings.len() == 1);
    let last = tokio::time::timeout(Duration::from_secs(5), answers.message()).await.expect("ended in time");
    let ended = last.expect("a closing answer").expect("an error answer");
    assert_eq!(ended.error.map(|e| e.code), Some(Code::DeadlineExceeded as i32));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), answers.message()).await.expect("closed").expect("ok").is_none()
    );
    assert!(started.elapsed() < Duration::from_secs(4), "the silent stream was held {:?}", started.elapsed());
    drop(sender);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_says_nothing_is_closed_after_the_header_bound() {
    use std::io::Read;
    let mut config = config();
    config.limits.header_timeout_secs = 1;
    let server = start(config).await;
    let address = server.address;
    let closed_after = tokio::task::spawn_blocking(move || {
        let mut silent = TcpStream::connect(address).expect("connect");
        silent.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let started = Instant::now();
        let mut buffer = [0u8; 64];
        // The server may send its HTTP/2 settings first; the connection then ends.
        while silent.read(&mut buffer).is_ok_and(|n| n > 0) {}
        started.elapsed()
    })
    .await
    .expect("reads");
    assert!(closed_after < Duration::from_secs(3), "a silent connection was held {closed_after:?}");
    // A client that speaks is served as usual.
    let mut client = server.client().await;
    client.embed(pb::EmbedRequest { texts: vec!["still served".into()], ..Default::default() }).await.expect("embed");
    server.stop().await;
}
