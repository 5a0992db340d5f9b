//! What survives a reload: the breakers of unchanged models; what does
//! not: removed models (never called again), the state of a provider whose
//! key changed (which uses the new key at once).

use llm_fallback::mock::{MockServer, ServerReply};

use super::{config, header, Gateway};

#[tokio::test]
async fn an_open_breaker_of_an_unchanged_model_is_still_open_after_a_reload() {
    let mock = MockServer::start().await;
    mock.always("flaky", ServerReply::status(500));
    mock.always("steady", ServerReply::text("fine"));
    let routes = r#"chat = ["mock/flaky", "mock/steady"]"#;
    let gw = Gateway::start(&config(&mock.base_url(), routes, "")).await;

    // One failure trips `flaky` for an hour; the route falls back.
    let response = gw.chat("chat").await;
    assert_eq!(header(&response, "x-llm-fallback-model"), "mock/steady");
    assert_eq!(mock.call_count("flaky"), 1);
    let ready = gw.ready().await;
    assert!(
        ready["routes"]["chat"]["cooling"]["mock/flaky"].is_u64(),
        "{ready}"
    );

    // A reload that changes something else (a new route).
    let more = format!("{routes}\nalone = [\"mock/steady\"]");
    gw.write(&config(&mock.base_url(), &more, ""));
    assert_eq!(gw.reloader.reload().unwrap().number, 2);

    // `flaky` is still open: skipped without a call.
    let response = gw.chat("chat").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-fallback-model"), "mock/steady");
    assert_eq!(
        mock.call_count("flaky"),
        1,
        "an open breaker was closed by the reload"
    );
    let ready = gw.ready().await;
    assert!(
        ready["routes"]["chat"]["cooling"]["mock/flaky"].is_u64(),
        "{ready}"
    );
    assert_eq!(ready["config"]["generation"], 2);
}

#[tokio::test]
async fn a_removed_model_is_not_called_after_the_reload() {
    let mock = MockServer::start().await;
    mock.always("old", ServerReply::text("old"));
    mock.always("new", ServerReply::text("new"));
    let gw = Gateway::start(&config(
        &mock.base_url(),
        r#"chat = ["mock/old", "mock/new"]
        legacy = ["mock/old"]"#,
        "",
    ))
    .await;
    assert_eq!(
        header(&gw.chat("chat").await, "x-llm-fallback-model"),
        "mock/old"
    );
    assert_eq!(mock.call_count("old"), 1);

    gw.write(&config(&mock.base_url(), r#"chat = ["mock/new"]"#, ""));
    gw.reloader.reload().unwrap();
    for _ in 0..5 {
        let response = gw.chat("chat").await;
        assert_eq!(header(&response, "x-llm-fallback-model"), "mock/new");
    }
    // Neither its route nor its id is served any more.
    assert_eq!(gw.chat("legacy").await.status(), 404);
    assert_eq!(gw.chat("mock/old").await.status(), 404);
    let models = gw.get("/v1/models").await.text().await.unwrap();
    assert!(!models.contains("mock/old"), "{models}");
    assert_eq!(mock.call_count("old"), 1, "a removed model was called");
}

#[tokio::test]
async fn a_provider_whose_key_changed_uses_the_new_key_and_starts_afresh() {
    let mock = MockServer::start().await;
    mock.always_for_key("gpt", "key-one", ServerReply::status(500));
    mock.always_for_key("gpt", "key-two", ServerReply::text("fine"));
    mock.always("spare", ServerReply::text("spare"));
    let routes = r#"chat = ["mock/gpt", "mock/spare"]"#;
    let gw = Gateway::start(&config(&mock.base_url(), routes, "")).await;

    // Key one fails: `mock/gpt` trips (the route falls back to `spare`).
    let gpt_with = |key: &str| {
        let calls = mock.calls().into_iter();
        calls
            .filter(|c| c.model == "gpt" && c.api_key() == Some(key))
            .count()
    };
    assert_eq!(
        header(&gw.chat("chat").await, "x-llm-fallback-model"),
        "mock/spare"
    );
    assert_eq!(gpt_with("key-one"), 1);
    let ready = gw.ready().await;
    assert!(
        ready["routes"]["chat"]["cooling"]["mock/gpt"].is_u64(),
        "{ready}"
    );

    // The provider now reads its key from another variable.
    let toml = config(&mock.base_url(), routes, "").replace("\"MOCK_KEY\"", "\"MOCK_KEY_TWO\"");
    gw.write(&toml);
    gw.reloader.reload().unwrap();

    // Its breaker belonged to the old endpoint: closed again, and the
    // next call goes out with the new key.
    let ready = gw.ready().await;
    assert!(
        ready["routes"]["chat"]["cooling"]["mock/gpt"].is_null(),
        "{ready}"
    );
    let response = gw.chat("chat").await;
    assert_eq!(header(&response, "x-llm-fallback-model"), "mock/gpt");
    assert_eq!(gpt_with("key-two"), 1);
    assert_eq!(
        gpt_with("key-one"),
        1,
        "the old key was used after the reload"
    );
}

#[tokio::test]
async fn a_cooling_key_of_an_unchanged_provider_is_still_skipped_after_a_reload() {
    let mock = MockServer::start().await;
    let limited = ServerReply::error(429, "rate_limit_exceeded", "slow down")
        .with_retry_after(std::time::Duration::from_secs(3600));
    mock.always_for_key("gpt", "key-one", limited);
    mock.always_for_key("gpt", "key-two", ServerReply::text("fine"));
    let keys = r#"keys = [{ env = "MOCK_KEY", label = "one" },
                          { env = "MOCK_KEY_TWO", label = "two", tier = 1 }]"#;
    let toml = |routes: &str| {
        config(&mock.base_url(), routes, "").replace("api_key_env = \"MOCK_KEY\"", keys)
    };
    let gw = Gateway::start(&toml(r#"chat = ["mock/gpt"]"#)).await;
    let with = |key: &str| {
        let calls = mock.calls().into_iter();
        calls.filter(|c| c.api_key() == Some(key)).count()
    };

    // Key one is rate-limited for an hour; the call moves on to key two.
    assert_eq!(gw.chat("chat").await.status(), 200);
    assert_eq!((with("key-one"), with("key-two")), (1, 1));

    gw.write(&toml(
        r#"chat = ["mock/gpt"]
        again = ["mock/gpt"]"#,
    ));
    assert_eq!(gw.reloader.reload().unwrap().number, 2);

    // Key one still cools: the call goes straight to key two.
    assert_eq!(gw.chat("again").await.status(), 200);
    assert_eq!((with("key-one"), with("key-two")), (1, 2));
}
