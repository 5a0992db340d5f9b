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

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
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
