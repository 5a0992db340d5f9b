//! The gateway's routes: keys on /v1 but not health, the body limit, the
//! model list, readiness while cooling, the embedded demo.

use super::*;

#[tokio::test]
async fn the_v1_routes_need_the_key_and_the_health_routes_do_not() {
    let (gw, primary, _backup) = fixture().await;
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/v1/chat/completions", gw.base);

    let r = gw.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = gw
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = gw
        .http
        .get(format!("{}/v1/models", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(primary.calls().is_empty());

    let r = gw
        .http
        .get(format!("{}/health", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(gw.chat("chat").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_the_gateway_keeps_serving() {
    let (gw, primary, _backup) = fixture().await;
    let big = "x".repeat(100 * 1024);
    let r = gw
        .post(&json!({"model": "chat", "messages": [{"role": "user", "content": big}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(primary.calls().is_empty());
    assert_eq!(gw.chat("chat").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn models_lists_the_routes_and_the_model_ids() {
    let (gw, _primary, _backup) = fixture().await;
    let r = gw
        .http
        .get(format!("{}/v1/models", gw.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for id in [
        "chat",
        "limited",
        "primary/gpt-4o-mini",
        "azure/gpt-4o-mini",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[tokio::test]
async fn readiness_turns_503_while_every_candidate_cools_down() {
    let solo = MockServer::start().await;
    solo.always(
        "gpt-4o-mini",
        ServerReply::error(429, "rate_limit_exceeded", "later")
            .with_retry_after(Duration::from_secs(30)),
    );
    let config = Config::from_toml_str(&format!(
        "routes.only = [\"solo/gpt-4o-mini\"]\nretry.max_retries = 0\n\
         [providers.solo]\nkind = \"openai\"\nbase_url = \"{}\"\n",
        solo.base_url()
    ))
    .unwrap();
    let gw = Gateway::start(config, &[]).await;
    let ready = |gw: &Gateway| gw.http.get(format!("{}/health/ready", gw.base)).send();

    assert_eq!(ready(&gw).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        gw.chat("only").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = ready(&gw).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() > 20);
    let live = gw.http.get(format!("{}/health", gw.base)).send().await;
    assert_eq!(live.unwrap().status(), StatusCode::OK);
    // With every candidate cooling, the route still tries the one that
    // reopens first rather than failing without a call.
    let r = gw.chat("only").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(solo.call_count("gpt-4o-mini"), 2);
}

#[tokio::test]
async fn the_embedded_demo_falls_back_every_other_answer_however_fast_the_calls() {
    let demo = demo::start().await.unwrap();
    let gw = Gateway::start(demo.config.clone(), &[]).await;
    let served = |r: &Response| {
        (
            header(r, MODEL_HEADER).to_owned(),
            header(r, FALLBACKS_HEADER).to_owned(),
        )
    };
    let steady = || ("steady/gpt-4o-mini".to_owned(), "1".to_owned());
    let flaky = || ("flaky/gpt-4o-mini".to_owned(), "0".to_owned());

    // Back to back, as fast as a client can: flaky fails (503, then 500)
    // and the call falls back, then flaky answers; never a cooling pause.
    for _ in 0..4 {
        let r = gw.chat("demo").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(served(&r), steady());
        assert_eq!(header(&r, ATTEMPTS_HEADER), "2");
        assert_eq!(served(&gw.chat("demo").await), flaky());
    }
}
