//! Request shape: a completion with text, usage and model; unknown
//! fields and prepended messages; Azure deployments; Providers routing.

use super::*;

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
