//! PrependMessages: each called model's own leading messages, once per attempt.

use std::sync::{Arc, Mutex};

use llm_fallback::chat::{PerModel, Role};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, ErrorKind, Message, PrependMessagesLayer,
    ProviderFallbackLayer,
};
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

const AZURE: &str = "azure/gpt-4o";
const CLAUDE: &str = "anthropic/claude-3-5-sonnet-20240620";
const OTHER: &str = "openai/gpt-4o";

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("question")])
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| format!("{}: {}", m.role, m.text()))
        .collect()
}

fn layer() -> PrependMessagesLayer {
    PrependMessagesLayer::builder()
        .model(AZURE, [Message::system("azure rules")])
        .model(
            CLAUDE,
            [Message::system("claude rules"), Message::user("example")],
        )
        .build()
        .unwrap()
}

/// A stand-in for Retry above the layer: the same request, called twice.
fn twice<S>(
    inner: S,
) -> impl Service<ChatRequest, Response = ChatResponse, Error = ChatError, Future: Send> + Clone
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError> + Clone + Send + 'static,
    S::Future: Send,
{
    service_fn(move |req: ChatRequest| {
        let inner = inner.clone();
        async move {
            let first = inner.clone().oneshot(req.clone()).await;
            match first {
                Ok(response) => Ok(response),
                Err(_) => inner.oneshot(req).await,
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn each_model_gets_its_own_messages_before_the_callers() {
    let mock = MockProvider::new();
    let service = layer().layer(mock.clone());

    service.clone().oneshot(request(CLAUDE)).await.unwrap();
    service.clone().oneshot(request(OTHER)).await.unwrap();

    let calls = mock.calls();
    assert_eq!(
        texts(&calls[0].messages),
        ["system: claude rules", "user: example", "user: question"]
    );
    assert_eq!(texts(&calls[1].messages), ["user: question"]);
}

#[tokio::test(start_paused = true)]
async fn a_retried_request_carries_the_messages_once_per_attempt() {
    let mock = MockProvider::new();
    mock.script(
        AZURE,
        [MockReply::error(ErrorKind::Server), MockReply::text("ok")],
    );
    let service = twice(layer().layer(mock.clone()));

    service.oneshot(request(AZURE)).await.unwrap();

    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(
            texts(&call.messages),
            ["system: azure rules", "user: question"]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_messages_switch_with_the_model_on_fallback() {
    let mock = MockProvider::new();
    mock.always(AZURE, MockReply::error(ErrorKind::Auth));
    mock.always(CLAUDE, MockReply::error(ErrorKind::Server));
    let fallback = ProviderFallbackLayer::builder()
        .group([AZURE, CLAUDE, OTHER])
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(fallback)
        .layer(layer())
        .service(mock.clone());

    let response = service.oneshot(request(AZURE)).await.unwrap();

    assert_eq!(response.model(), OTHER);
    let sent: Vec<_> = mock.calls().iter().map(|c| texts(&c.messages)).collect();
    assert_eq!(
        sent,
        [
            vec!["system: azure rules", "user: question"],
            vec!["system: claude rules", "user: example", "user: question"],
            vec!["user: question"],
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn messages_left_by_an_earlier_model_are_replaced() {
    let mock = MockProvider::new();
    let service = layer().layer(mock.clone());
    let mut req = request(OTHER);
    req.set_prepended(Some(Arc::from(vec![Message::system("azure rules")])));

    service.oneshot(req).await.unwrap();

    assert_eq!(texts(&mock.calls()[0].messages), ["user: question"]);
}

#[tokio::test(start_paused = true)]
async fn a_default_applies_to_every_model_without_its_own_list() {
    let messages = PerModel::new(vec![Message::developer("be brief")])
        .with(AZURE, vec![Message::system("azure rules")])
        .with(CLAUDE, vec![]);
    let mock = MockProvider::new();
    let service = PrependMessagesLayer::builder()
        .per_model(messages)
        .build()
        .unwrap()
        .layer(mock.clone());

    for model in [AZURE, CLAUDE, OTHER] {
        service.clone().oneshot(request(model)).await.unwrap();
    }

    let sent: Vec<_> = mock.calls().iter().map(|c| texts(&c.messages)).collect();
    assert_eq!(
        sent,
        [
            vec!["system: azure rules", "user: question"],
            vec!["user: question"],
            vec!["developer: be brief", "user: question"],
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_messages_are_shared_not_copied_per_request() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let leaf = service_fn(move |req: ChatRequest| {
        let prepended = req.prepended();
        log.lock()
            .unwrap()
            .push((prepended.as_ptr() as usize, texts(prepended)));
        let mock = MockProvider::new();
        mock.oneshot(req)
    });
    let service = layer().layer(leaf);

    service.clone().oneshot(request(AZURE)).await.unwrap();
    service.oneshot(request(AZURE)).await.unwrap();

    // An empty list would share a dangling pointer too: check it is azure's.
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].1, ["system: azure rules"]);
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn roles_that_cannot_open_a_conversation_are_rejected_at_build() {
    let e = PrependMessagesLayer::builder()
        .all_models([Message::system("ok"), Message::assistant("Sure!")])
        .model(AZURE, [Message::tool("call_1", "42")])
        .model("azure gpt", [Message::user("fine")])
        .build()
        .unwrap_err();

    let problems: Vec<_> = e
        .problems()
        .iter()
        .map(|p| {
            (
                p.path.as_str(),
                p.message.split(' ').take(2).collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            ("prepend.all_models[1]", "role assistant".to_owned()),
            ("prepend.azure/gpt-4o[0]", "role tool".to_owned()),
            ("prepend.azure gpt", "model id".to_owned()),
        ]
    );
    for role in [Role::System, Role::Developer, Role::User] {
        let ok = PrependMessagesLayer::builder()
            .all_models([Message::new(role, "x")])
            .build();
        assert!(ok.is_ok(), "{role}");
    }
}
