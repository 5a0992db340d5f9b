//! Broken connections and bodies: closed, cut off, refused, malformed.

use super::*;

#[tokio::test]
async fn a_connection_closed_before_the_head_is_a_connect_error() {
    let e = fail_with(ServerReply::reset()).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.status(), None);
    assert!(e.message().contains("closed"), "{e}");
}

#[tokio::test]
async fn a_body_that_breaks_off_is_a_connect_error() {
    let e = fail_with(ServerReply::text("hello world").cut_after(0)).await;
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.message().contains("reading the response body"), "{e}");
}

/// An address on 127.0.0.1 where nothing listens (a port just released).
async fn refused_addr() -> std::net::SocketAddr {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    dead.local_addr().unwrap()
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let addr = refused_addr().await;
    let client = OpenAi::builder()
        .base_url(format!("http://{addr}/v1"))
        .build()
        .unwrap();
    let e = client.oneshot(request("gpt-4o-mini")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert!(e.message().contains("connection"), "{e}");
}

#[tokio::test]
async fn a_malformed_success_body_is_a_server_error_quoting_a_short_excerpt() {
    let e = fail_with(ServerReply::raw(
        200,
        "application/json",
        "{\"choices\": [trunc",
    ))
    .await;
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("malformed response body"), "{e}");
    assert!(e.message().contains("trunc"), "{e}");

    let e = fail_with(ServerReply::raw(
        200,
        "application/json",
        r#"{"object": "list"}"#,
    ))
    .await;
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("not a chat completion"), "{e}");

    let page = format!("<html>{}</html>", "x".repeat(10_000));
    let e = fail_with(ServerReply::raw(200, "text/html", page)).await;
    assert!(
        e.message().len() < 400,
        "excerpt is short: {}",
        e.message().len()
    );
}

/// The crate's own client speaks TLS to an `https` URL: a plain-HTTP
/// server on the other end fails the handshake, before any request is
/// made, as a `Connect` error that names no URL.
#[tokio::test]
async fn https_to_a_plain_http_server_fails_the_handshake_as_a_connect_error() {
    let server = MockServer::start().await;
    server.always("gpt-4o-mini", ServerReply::text("hello"));
    let base = server.base_url().replacen("http://", "https://", 1);
    let client = OpenAi::builder()
        .base_url(&base)
        .api_key(KEY)
        .build()
        .unwrap();
    let e = client.oneshot(request("gpt-4o-mini")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.message().starts_with("connection failed"), "{e}");
    let addr = server.addr().to_string();
    assert!(!e.to_string().contains(&addr), "no URL in {e}");
    assert!(!format!("{e:?}").contains(KEY));
    assert_eq!(server.call_count("gpt-4o-mini"), 0);
}

/// A `reqwest::Client` of the caller's is used as given, for complete and
/// streamed answers, and its errors name no URL either.
#[tokio::test]
async fn a_callers_reqwest_client_serves_answers_and_streams_and_its_errors_name_no_url() {
    use futures_util::StreamExt;

    let server = MockServer::start().await;
    server.always("gpt-4o-mini", ServerReply::text("hello there"));
    let client = OpenAi::builder()
        .base_url(server.base_url())
        .api_key(KEY)
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let answer = client
        .clone()
        .oneshot(request("gpt-4o-mini"))
        .await
        .unwrap()
        .into_completion()
        .unwrap();
    assert_eq!(answer.choices[0].message.text(), "hello there");
    let stream = client
        .clone()
        .oneshot(request("gpt-4o-mini").with_stream(true))
        .await
        .unwrap()
        .into_stream()
        .unwrap();
    let text: String = stream
        .map(|chunk| chunk.unwrap().text())
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(text, "hello there");

    let addr = refused_addr().await;
    let client = OpenAi::builder()
        .base_url(format!("http://{addr}/v1"))
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let e = client.oneshot(request("gpt-4o-mini")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.message().starts_with("connection failed"), "{e}");
    assert!(!e.to_string().contains(&addr.to_string()), "no URL in {e}");
}
