//! An invalid config keeps the old one, and the error lists every problem.

use llm_fallback::mock::{MockServer, ServerReply};

use super::{config, header, Gateway};

#[tokio::test]
async fn an_invalid_config_keeps_the_old_one_and_lists_every_problem() {
    let mock = MockServer::start().await;
    mock.always("gpt", ServerReply::text("hello"));
    let good = config(&mock.base_url(), r#"chat = ["mock/gpt"]"#, "");
    let gw = Gateway::start(&good).await;
    let first = gw.reloader.generation();

    // Three problems in three places.
    let bad = config(
        &mock.base_url(),
        r#"chat = ["nowhere/gpt"]
        other = []"#,
        "body_limit = 0",
    );
    gw.write(&bad);
    let e = gw.reloader.reload().unwrap_err();
    let paths: Vec<&str> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert!(paths.iter().any(|p| p.starts_with("routes.chat")), "{e}");
    assert!(paths.iter().any(|p| p.starts_with("routes.other")), "{e}");
    assert!(paths.contains(&"server.body_limit"), "{e}");

    // Still the first config: same generation, same hash, same answers.
    assert_eq!(gw.reloader.generation(), first);
    let response = gw.chat("chat").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-fallback-model"), "mock/gpt");
    let ready = gw.ready().await;
    assert_eq!(ready["config"]["generation"], 1);
    assert_eq!(ready["config"]["hash"], first.hash.as_str());

    // A file that does not parse is refused the same way.
    gw.write("[routes\nchat = ");
    assert!(gw.reloader.reload().is_err());
    assert_eq!(gw.reloader.generation().number, 1);

    // Fixed, it loads as generation 2.
    gw.write(&good.replace("[routes]", "[routes]\nalso = [\"mock/gpt\"]"));
    let second = gw.reloader.reload().unwrap();
    assert_eq!(second.number, 2);
    assert_ne!(second.hash, first.hash);
    assert_eq!(gw.chat("also").await.status(), 200);
}

#[tokio::test]
async fn ready_and_metrics_show_the_generation_and_the_config_hash() {
    let mock = MockServer::start().await;
    mock.always("gpt", ServerReply::text("hello"));
    let gw = Gateway::start(&config(&mock.base_url(), r#"chat = ["mock/gpt"]"#, "")).await;
    let scrape = async || gw.get("/metrics").await.text().await.unwrap();
    let first = gw.reloader.generation();
    assert_eq!(first.hash.len(), 16);
    let text = scrape().await;
    assert!(
        text.contains("llm_fallback_config_generation 1\n"),
        "{text}"
    );
    let info = format!(
        "llm_fallback_config_info{{config_hash=\"{}\"}} 1",
        first.hash
    );
    assert!(text.contains(&info), "{text}");

    gw.write(&config(
        &mock.base_url(),
        r#"chat = ["mock/gpt"]
        fresh = ["mock/gpt"]"#,
        "",
    ));
    let second = gw.reloader.reload().unwrap();
    let text = scrape().await;
    assert!(
        text.contains("llm_fallback_config_generation 2\n"),
        "{text}"
    );
    let info = format!(
        "llm_fallback_config_info{{config_hash=\"{}\"}} 1",
        second.hash
    );
    assert!(text.contains(&info), "{text}");
    let ready = gw.ready().await;
    assert_eq!(ready["config"]["generation"], 2);
    assert_eq!(ready["config"]["hash"], second.hash.as_str());
    // The new route is listed, and labelled in the metrics once called.
    assert!(ready["routes"]["fresh"].is_object(), "{ready}");
    assert_eq!(gw.chat("fresh").await.status(), 200);
    let text = scrape().await;
    assert!(text.contains("gen_ai_request_model=\"fresh\""), "{text}");
}
