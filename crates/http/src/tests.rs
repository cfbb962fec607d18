//! The transport against tiny raw-socket servers on loopback.

#![expect(
    clippy::disallowed_methods,
    reason = "test servers are plain tasks that die with the test runtime"
)]

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const OPTIONS: TransportOptions = TransportOptions {
    connect_timeout: Duration::from_secs(2),
    first_byte_timeout: Duration::from_millis(300),
    idle_timeout: Duration::from_millis(300),
};

/// Serves one connection: reads the request head, then writes `parts`, each
/// after its delay.
async fn serve_once(parts: Vec<(Duration, &'static [u8])>) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!(
        "http://{}/v1/x?key=secret",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await.unwrap();
        for (delay, bytes) in parts {
            tokio::time::sleep(delay).await;
            if socket.write_all(bytes).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    url
}

fn get(url: Url) -> OutboundRequest {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, "Bearer sk-secret".parse().unwrap());
    OutboundRequest {
        method: Method::GET,
        url,
        headers,
        body: Bytes::new(),
    }
}

const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn streams_chunks_and_ends() {
    let gap = Duration::from_millis(200);
    let url = serve_once(vec![
        (Duration::ZERO, HEAD),
        (gap, b"3\r\nhel\r\n"),
        (gap, b"2\r\nlo\r\n"),
        (gap, b"0\r\n\r\n"),
    ])
    .await;
    let transport = Transport::new(OPTIONS).unwrap();
    let response = transport.send(get(url)).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    // Every gap is under the 300 ms idle limit though the whole body takes
    // 600 ms: the timer moves with the chunks.
    assert_eq!(
        response.body.collect(1024).await.unwrap(),
        Bytes::from_static(b"hello")
    );
}

#[tokio::test]
async fn refused_connections_are_connect_errors_without_the_query() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!(
        "http://{}/v1?key=secret",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    drop(listener);
    let error = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains("secret"), "{error}");
    // The root cause, not the client library's layers of wording.
    assert!(
        error
            .to_string()
            .ends_with("/v1: Connection refused (os error 111)"),
        "{error}"
    );
}

#[tokio::test]
async fn a_slow_head_is_a_first_byte_timeout() {
    let url = serve_once(vec![(Duration::from_secs(2), HEAD)]).await;
    let error = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Timeout {
                phase: TimeoutPhase::FirstByte,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains("secret"));
}

#[tokio::test]
async fn a_silent_body_is_an_idle_timeout() {
    let url = serve_once(vec![
        (Duration::ZERO, HEAD),
        (Duration::ZERO, b"2\r\nhi\r\n"),
    ])
    .await;
    let response = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap();
    let mut body = response.body;
    assert_eq!(
        body.next().await.unwrap().unwrap(),
        Bytes::from_static(b"hi")
    );
    let error = body.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(body.next().await.is_none());
}

#[tokio::test]
async fn a_reset_mid_body_is_broken() {
    let url = serve_once(vec![
        (Duration::ZERO, HEAD),
        (Duration::ZERO, b"2\r\nhi\r\nzz-not-a-chunk\r\n"),
    ])
    .await;
    let response = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap();
    let error = response.body.collect(1024).await.unwrap_err();
    assert!(matches!(error, TransportError::Broken { .. }), "{error:?}");
}

#[tokio::test]
async fn collect_refuses_oversized_bodies() {
    let url = serve_once(vec![
        (Duration::ZERO, HEAD),
        (Duration::ZERO, b"5\r\nhello\r\n0\r\n\r\n"),
    ])
    .await;
    let response = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap();
    let error = response.body.collect(3).await.unwrap_err();
    assert!(
        matches!(error, TransportError::TooLarge { limit: 3, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_first_chunk_is_awaited_and_then_read_first() {
    let url = serve_once(vec![
        (Duration::ZERO, HEAD),
        (Duration::from_millis(50), b"2\r\nhi\r\n"),
        (Duration::ZERO, b"3\r\n yo\r\n0\r\n\r\n"),
    ])
    .await;
    let mut response = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap();
    response.body.first_chunk().await.unwrap();
    // Asking again changes nothing; the chunk is not lost.
    response.body.first_chunk().await.unwrap();
    assert_eq!(response.body.collect(1024).await.unwrap(), "hi yo");
}

#[tokio::test]
async fn a_body_that_never_starts_fails_at_its_first_chunk() {
    let url = serve_once(vec![
        (Duration::ZERO, HEAD),
        (Duration::from_secs(2), b"2\r\nhi\r\n0\r\n\r\n"),
    ])
    .await;
    let mut response = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap();
    let error = response.body.first_chunk().await.unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            }
        ),
        "{error:?}"
    );
}
