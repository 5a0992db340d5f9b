//! The OpenAI and Azure clients against the mock provider server, over real
//! sockets on 127.0.0.1: request shape, failure classification, secrets.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llm_fallback::chat::Role;
use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::openai::{Azure, OpenAi, AZURE_API_VERSION};
use llm_fallback::{ChatError, ChatRequest, ChatResponse, ErrorKind, Message, Providers};
use serde_json::json;
use tower::ServiceExt;

const KEY: &str = "sk-test-SECRET-0123456789";

fn client(server: &MockServer) -> OpenAi {
    OpenAi::builder()
        .base_url(server.base_url())
        .api_key(KEY)
        .build()
        .unwrap()
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("say hello to the world")])
}

async fn fail_with(reply: ServerReply) -> ChatError {
    let server = MockServer::start().await;
    server.always("gpt-4o-mini", reply);
    let e = client(&server)
        .oneshot(request("gpt-4o-mini"))
        .await
        .unwrap_err();
    assert_eq!(
        server.call_count("gpt-4o-mini"),
        1,
        "the client never retries"
    );
    e
}

#[tokio::test]
async fn a_completion_arrives_with_text_usage_and_model() {
    let server = MockServer::start().await;
    server.always("gpt-4o-mini", ServerReply::text("hello world"));
    let response: ChatResponse = client(&server)
        .oneshot(request("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(response.model(), "gpt-4o-mini");
    assert_eq!(response.text().as_deref(), Some("hello world"));
    let usage = response.usage().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 2));
    let call = &server.calls()[0];
    assert_eq!(call.path, "/v1/chat/completions");
    assert_eq!(
        call.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert!(!call.stream);
}

#[tokio::test]
async fn every_error_status_maps_to_its_kind() {
    let table = [
        (429, ErrorKind::RateLimited),
        (401, ErrorKind::Auth),
        (403, ErrorKind::Auth),
        (404, ErrorKind::NotFound),
        (408, ErrorKind::Timeout),
        (400, ErrorKind::BadRequest),
        (422, ErrorKind::BadRequest),
        (409, ErrorKind::BadRequest),
        (500, ErrorKind::Server),
        (502, ErrorKind::Server),
        (503, ErrorKind::Server),
        (504, ErrorKind::Server),
        (529, ErrorKind::Server),
    ];
    for (status, kind) in table {
        let e = fail_with(ServerReply::status(status)).await;
        assert_eq!(e.kind(), kind, "status {status}");
        assert_eq!(e.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(e.model(), Some("gpt-4o-mini"));
        assert!(
            e.message().starts_with("mock "),
            "provider message kept: {e}"
        );
    }
}

#[tokio::test]
async fn error_codes_and_messages_in_the_body_refine_the_kind() {
    let table = [
        (
            429,
            "insufficient_quota",
            "You exceeded your current quota",
            ErrorKind::RateLimited,
        ),
        (
            429,
            "rate_limit_exceeded",
            "Rate limit reached",
            ErrorKind::RateLimited,
        ),
        (
            400,
            "context_length_exceeded",
            "This model's maximum context length is 8192 tokens",
            ErrorKind::ContextWindowExceeded,
        ),
        (
            400,
            "",
            "This model's maximum context length is 8192 tokens",
            ErrorKind::ContextWindowExceeded,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ErrorKind::ContextWindowExceeded,
        ),
        (
            400,
            "content_policy_violation",
            "Your request was rejected",
            ErrorKind::ContentFilter,
        ),
        (
            400,
            "content_filter",
            "The response was filtered",
            ErrorKind::ContentFilter,
        ),
        (
            404,
            "model_not_found",
            "The model `gpt-9` does not exist",
            ErrorKind::NotFound,
        ),
        (
            400,
            "model_not_found",
            "The model `gpt-9` does not exist",
            ErrorKind::NotFound,
        ),
        (
            400,
            "invalid_value",
            "temperature must be at most 2",
            ErrorKind::BadRequest,
        ),
    ];
    for (status, code, message, kind) in table {
        let e = fail_with(ServerReply::error(status, code, message)).await;
        assert_eq!(e.kind(), kind, "{status} {code} {message}");
        assert_eq!(e.message(), message);
        if !code.is_empty() {
            assert_eq!(e.code(), Some(code));
        }
    }
}

#[tokio::test]
async fn azure_content_filter_inner_code_is_a_content_filter_error() {
    let body = json!({"error": {"code": "content_filter", "message": "The prompt was filtered",
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}}}});
    let e = fail_with(ServerReply::raw(400, "application/json", body.to_string())).await;
    assert_eq!(e.kind(), ErrorKind::ContentFilter);
    assert_eq!(e.message(), "The prompt was filtered");
}

#[tokio::test]
async fn retry_after_is_read_in_seconds_milliseconds_and_as_a_date() {
    let e = fail_with(ServerReply::status(429).with_retry_after(Duration::from_secs(2))).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));

    let e = fail_with(ServerReply::status(429).with_retry_after_ms(1500.0)).await;
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));

    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let e = fail_with(ServerReply::status(503).with_header("retry-after", date)).await;
    let after = e.retry_after().unwrap();
    assert!(
        after > Duration::from_secs(27) && after <= Duration::from_secs(30),
        "{after:?}"
    );
}

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

#[tokio::test]
async fn an_error_status_with_a_non_json_body_keeps_the_status_kind() {
    let e = fail_with(ServerReply::raw(502, "text/html", "<h1>Bad Gateway</h1>")).await;
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.message(), "<h1>Bad Gateway</h1>");
}

#[tokio::test]
async fn unknown_fields_and_prepended_messages_reach_the_upstream() {
    let server = MockServer::start().await;
    let mut req = request("gpt-4o-mini")
        .with_extra("temperature", json!(0.2))
        .with_extra("x_vendor", json!({"nested": [1, "two", null]}));
    req.set_prepended(Some(Arc::from(vec![Message::system("be brief")])));
    client(&server).oneshot(req).await.unwrap();

    let call = &server.calls()[0];
    assert_eq!(call.body["temperature"], json!(0.2));
    assert_eq!(call.body["x_vendor"], json!({"nested": [1, "two", null]}));
    assert_eq!(call.messages[0].role, Role::System);
    assert_eq!(call.texts(), ["be brief", "say hello to the world"]);
}

#[tokio::test]
async fn azure_posts_to_the_deployment_with_api_version_and_api_key() {
    let server = MockServer::start().await;
    let azure = Azure::builder()
        .endpoint(server.endpoint())
        .api_key(KEY)
        .build()
        .unwrap();
    let response = azure.clone().oneshot(request("gpt-4o")).await.unwrap();
    assert_eq!(response.text().as_deref(), Some("ok from gpt-4o"));

    let call = &server.calls()[0];
    assert_eq!(call.model, "gpt-4o");
    assert!(call
        .path
        .starts_with("/openai/deployments/gpt-4o/chat/completions?"));
    assert_eq!(call.query("api-version"), Some(AZURE_API_VERSION));
    assert_eq!(call.header("api-key"), Some(KEY));
    assert_eq!(call.header("authorization"), None);

    let custom = Azure::builder()
        .endpoint(format!("{}/", server.endpoint()))
        .api_version("2025-01-01-preview")
        .api_key(KEY)
        .build()
        .unwrap();
    custom.oneshot(request("my deployment")).await.unwrap();
    let call = &server.calls()[1];
    assert_eq!(call.model, "my deployment");
    assert_eq!(call.query("api-version"), Some("2025-01-01-preview"));
}

#[tokio::test]
async fn providers_route_azure_and_openai_to_their_clients() {
    let azure_server = MockServer::start().await;
    let openai_server = MockServer::start().await;
    azure_server.always("gpt-4o-mini", ServerReply::status(401));
    let providers = Providers::builder()
        .provider(
            "azure",
            Azure::builder()
                .endpoint(azure_server.endpoint())
                .api_key("wrong")
                .build()
                .unwrap(),
        )
        .provider("openai", client(&openai_server))
        .build()
        .unwrap();

    let e = providers
        .clone()
        .oneshot(request("azure/gpt-4o-mini"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.model()),
        (ErrorKind::Auth, Some("azure/gpt-4o-mini"))
    );
    let ok = providers
        .oneshot(request("openai/gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(ok.model(), "openai/gpt-4o-mini");

    assert_eq!(azure_server.called_models(), ["gpt-4o-mini"]);
    assert_eq!(openai_server.called_models(), ["gpt-4o-mini"]);
}

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

#[tokio::test]
async fn an_error_object_in_a_success_body_is_classified() {
    let body = json!({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}});
    let e = fail_with(ServerReply::raw(200, "application/json", body.to_string())).await;
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.code(), Some("rate_limit_exceeded"));
}
