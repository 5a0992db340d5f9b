//! Answers through the gateway: a JSON answer and a stream that fall
//! back, and each failure's OpenAI-shaped status.

use super::*;

#[tokio::test]
async fn a_json_answer_shows_the_fallback_in_its_model_and_headers() {
    let (gw, primary, backup) = fixture().await;
    let r = gw.chat("chat").await;

    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, MODEL_HEADER), "azure/gpt-4o-mini");
    assert_eq!(header(&r, ATTEMPTS_HEADER), "2");
    assert_eq!(header(&r, FALLBACKS_HEADER), "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "azure/gpt-4o-mini");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "ok from gpt-4o-mini"
    );
    // Each provider got its own key, in its own header.
    assert_eq!(
        primary.calls()[0].header("authorization"),
        Some("Bearer pk")
    );
    let azure = &backup.calls()[0];
    assert_eq!(azure.header("api-key"), Some("ak"));
    assert!(
        azure.path.starts_with("/openai/deployments/gpt-4o-mini/"),
        "{}",
        azure.path
    );
}

#[tokio::test]
async fn a_stream_falls_back_before_its_first_token_and_ends_with_usage_and_done() {
    let (gw, _primary, _backup) = fixture().await;
    let r = gw
        .post(
            &json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "content-type").starts_with("text/event-stream"));
    assert_eq!(header(&r, MODEL_HEADER), "azure/gpt-4o-mini");
    assert_eq!(header(&r, FALLBACKS_HEADER), "1");
    let text = r.text().await.unwrap();
    let frames: Vec<&str> = text
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| f.strip_prefix("data: ").expect("an SSE data frame"))
        .collect();
    assert_eq!(frames.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == "azure/gpt-4o-mini"));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "ok from gpt-4o-mini");
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn each_failure_gets_its_openai_shaped_status() {
    let (gw, _primary, backup) = fixture().await;

    let r = gw.chat("limited").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after"), "7");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let r = gw.chat("broken").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "all_candidates_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("all 2 candidates failed: primary/broken: 500"),
        "{message}"
    );
    assert!(message.contains("azure/broken: 500"), "{message}");

    // A bad request is the caller's: no fallback, the provider's reason.
    let r = gw.chat("picky").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("bad temperature"), "{message}");
    assert_eq!(backup.call_count("picky"), 0);

    let started = std::time::Instant::now();
    let r = gw.chat("slow").await;
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(5));

    let r = gw.chat("gpt-5").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");

    let r = gw.post(&json!({})).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(KEY)
        .header("content-type", "text/plain")
        .body(r#"{"model": "chat", "messages": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
