//! Building the clients: invalid configuration refused naming the value;
//! the key never in Debug output or errors.

use super::*;

#[tokio::test]
async fn the_key_never_shows_in_debug_or_errors() {
    let server = MockServer::start().await;
    // A provider that echoes the key back in its error message.
    server.always(
        "gpt-4o-mini",
        ServerReply::error(
            401,
            "invalid_api_key",
            &format!("Incorrect API key provided: {KEY}"),
        ),
    );
    let openai = client(&server);
    let azure = Azure::builder()
        .endpoint(server.endpoint())
        .api_key(KEY)
        .build()
        .unwrap();
    let builder = OpenAi::builder().api_key(KEY).header("x-secret", KEY);
    let mut seen = vec![
        format!("{openai:?}"),
        format!("{azure:?}"),
        format!("{builder:?}"),
    ];
    for e in [
        openai.oneshot(request("gpt-4o-mini")).await.unwrap_err(),
        azure.oneshot(request("gpt-4o-mini")).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("Incorrect API key provided"));
        seen.extend([format!("{e}"), format!("{e:?}")]);
    }
    seen.extend(server.calls().iter().map(|c| format!("{c:?}")));
    for text in seen {
        assert!(!text.contains(KEY), "key leaked in: {text}");
    }
}

#[tokio::test]
async fn invalid_configuration_is_rejected_naming_the_value() {
    let e = OpenAi::builder().base_url("not a url").build().unwrap_err();
    assert!(
        e.to_string().contains("base_url") && e.to_string().contains("not a url"),
        "{e}"
    );
    let e = OpenAi::builder()
        .base_url("ftp://example.com")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("ftp://example.com"), "{e}");
    let e = OpenAi::builder().api_key("").build().unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = OpenAi::builder()
        .header("bad header", "v")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("bad header"), "{e}");
    let e = Azure::builder().api_key("k").build().unwrap_err();
    assert!(e.to_string().contains("endpoint"), "{e}");
    let e = OpenAi::builder()
        .base_url(format!("https://user:{KEY}@example.com/v1"))
        .build()
        .unwrap_err();
    assert!(!e.to_string().contains(KEY), "{e}");
}
