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

/// Reads one request head (and a body as long as its `content-length`)
/// from `socket`; `None` at end of stream.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = seen.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |value| value.trim().parse::<usize>().unwrap());
            while seen.len() < end + 4 + length {
                let read = socket.read(&mut buf).await.ok()?;
                seen.extend_from_slice(&buf[..read]);
            }
            return Some(head);
        }
        let read = socket.read(&mut buf).await.ok()?;
        if read == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..read]);
    }
}

const OK_HI: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";

/// Serves `OK_HI` to every request on every connection; counts accepted
/// connections and keeps the request heads.
async fn keep_alive_server(
    close_after_each: bool,
) -> (Url, Arc<std::sync::Mutex<(usize, Vec<String>)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/v1/x", listener.local_addr().unwrap())).unwrap();
    let seen = Arc::new(std::sync::Mutex::new((0, Vec::new())));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            log.lock().unwrap().0 += 1;
            let log = log.clone();
            tokio::spawn(async move {
                while let Some(head) = read_request(&mut socket).await {
                    log.lock().unwrap().1.push(head);
                    if socket.write_all(OK_HI).await.is_err() || close_after_each {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// GETs `url` and reads the whole (short) answer.
async fn fetch(transport: &Transport, url: Url) -> Bytes {
    let response = transport.send(get(url)).await.unwrap();
    response.body.collect(1024).await.unwrap()
}

#[tokio::test]
async fn connections_are_kept_alive_and_requests_carry_host_and_agent() {
    let (url, seen) = keep_alive_server(false).await;
    let transport = Transport::new(OPTIONS).unwrap();
    for _ in 0..3 {
        assert_eq!(fetch(&transport, url.clone()).await, "hi");
    }
    let (accepted, heads) = seen.lock().unwrap().clone();
    assert_eq!(accepted, 1, "one connection for three requests");
    assert_eq!(heads.len(), 3);
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /v1/x http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!(
            "\r\nhost: {}",
            &url[Position::BeforeHost..Position::AfterPort]
        )),
        "{head}"
    );
    assert!(head.contains("\r\nuser-agent: subgate/"), "{head}");
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_replaced() {
    let (url, seen) = keep_alive_server(true).await;
    let transport = Transport::new(OPTIONS).unwrap();
    for _ in 0..3 {
        assert_eq!(fetch(&transport, url.clone()).await, "hi");
        // Let the close reach us, as it would between real requests.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.lock().unwrap().0, 3);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await.unwrap();
        socket.write_all(HEAD).await.unwrap();
        socket.write_all(b"2\r\nhi\r\n").await.unwrap();
        let mut rest = [0u8; 16];
        // The client reads no more of the body and the upstream sees EOF.
        let read = socket.read(&mut rest).await.unwrap_or(0);
        closed_tx.send(read).unwrap();
    });
    let transport = Transport::new(OPTIONS).unwrap();
    let response = transport.send(get(url)).await.unwrap();
    let mut body = response.body;
    assert_eq!(body.next().await.unwrap().unwrap(), "hi");
    drop(body);
    let read = tokio::time::timeout(Duration::from_secs(2), closed_rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, 0);
}

#[tokio::test]
async fn plain_http_goes_through_a_forwarding_proxy_with_its_credentials() {
    let (proxy, seen) = keep_alive_server(false).await;
    let matcher = Matcher::builder()
        .http(format!(
            "http://user:pass@{}",
            &proxy[Position::BeforeHost..Position::AfterPort]
        ))
        .build();
    let transport = Transport::with_proxies(OPTIONS, Some(matcher));
    let target = Url::parse("http://upstream.invalid:8080/v1/x?y=1").unwrap();
    assert_eq!(fetch(&transport, target).await, "hi");
    let heads = seen.lock().unwrap().1.clone();
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get http://upstream.invalid:8080/v1/x?y=1 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nhost: upstream.invalid:8080"), "{head}");
    // "user:pass" in Basic form.
    assert!(
        head.contains("\r\nproxy-authorization: basic dxnlcjpwyxnz"),
        "{head}"
    );
}

#[tokio::test]
async fn https_asks_the_proxy_for_a_tunnel_and_reports_a_refusal() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (head_tx, head_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let head = read_request(&mut socket).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        head_tx.send(head).unwrap();
    });
    let matcher = Matcher::builder()
        .https(format!("http://a:b@{proxy}"))
        .build();
    let transport = Transport::with_proxies(OPTIONS, Some(matcher));
    let target = Url::parse("https://upstream.invalid/v1?key=secret").unwrap();
    let error = transport.send(get(target)).await.unwrap_err();
    assert!(matches!(error, TransportError::Connect { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("the proxy refused the tunnel: HTTP/1.1 407"),
        "{error}"
    );
    assert!(!error.to_string().contains("secret"), "{error}");
    let head = head_rx.await.unwrap();
    assert!(
        head.starts_with("CONNECT upstream.invalid:443 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nProxy-Authorization: Basic YTpi"),
        "{head}"
    );
}

#[tokio::test]
async fn https_to_a_server_that_speaks_no_tls_is_a_connect_error() {
    // It answers the TLS hello with plain HTTP.
    let mut url = serve_once(vec![(Duration::ZERO, OK_HI)]).await;
    url.set_scheme("https").unwrap();
    let error = Transport::new(OPTIONS)
        .unwrap()
        .send(get(url))
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::Connect { .. }), "{error:?}");
}
