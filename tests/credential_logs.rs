//! Keys never leak during rotation: every log line (TRACE), every error's
//! `Display` and `Debug`, and every `Debug` output of a run with rotation,
//! cooldowns and failures is searched for the key values. A test binary of
//! its own, so no other test's subscriber interferes.
#![cfg(all(feature = "openai", feature = "anthropic", feature = "mock"))]

mod log_capture;
use log_capture::LogBuffer;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::providers::anthropic::Anthropic;
use llm_fallback::providers::credentials::{CredentialConfig, Credentials, Key};
use llm_fallback::providers::openai::{Azure, OpenAi};
use llm_fallback::{
    ChatError, ChatRequest, ChatResponse, CooldownLayer, Message, ProviderFallbackLayer, Providers,
    RetryLayer,
};
use tower::{ServiceBuilder, ServiceExt};

const KEYS: [&str; 6] = [
    "sk-openai-A-LEAKCHECK-1111",
    "sk-openai-B-LEAKCHECK-2222",
    "sk-openai-C-LEAKCHECK-3333",
    "azure-A-LEAKCHECK-4444",
    "azure-B-LEAKCHECK-5555",
    "sk-ant-A-LEAKCHECK-6666",
];

/// Everything printed during the run.
#[derive(Default)]
struct Printed(Vec<String>);

impl Printed {
    fn error(&mut self, e: &ChatError) {
        self.0.push(format!("{e} {e:?} {:?}", e.attempts()));
        for a in e.attempts() {
            self.0.push(a.to_string());
        }
    }

    fn result(&mut self, result: &Result<ChatResponse, ChatError>) {
        match result {
            Ok(r) => {
                self.0.push(format!("{r:?} {:?}", r.attempts()));
                self.0.extend(r.attempts().iter().map(ToString::to_string));
            }
            Err(e) => self.error(e),
        }
    }

    fn debug(&mut self, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{value:?}"));
    }
}

/// A provider error that echoes the key, as OpenAI's "Incorrect API key provided" does.
fn echoing(status: u16, code: &str, key: &str) -> ServerReply {
    ServerReply::error(status, code, &format!("Incorrect API key provided: {key}."))
}

#[tokio::test]
async fn no_key_value_reaches_a_log_line_an_error_or_a_debug_output() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::TRACE);
    let mut printed = Printed::default();

    let server = MockServer::start().await;
    let [oa, ob, oc, za, zb, an] = KEYS;
    server.always_for_key("gpt-4o", oa, echoing(429, "insufficient_quota", oa));
    server.always_for_key("gpt-4o", ob, echoing(401, "invalid_api_key", ob));
    server.always_for_key("gpt-4o", oc, echoing(403, "invalid_api_key", oc));
    server.always_for_key("gpt-4o", za, echoing(429, "rate_limit_exceeded", za));
    server.always_for_key(
        "claude-3-5-haiku",
        an,
        echoing(401, "authentication_error", an),
    );

    let env = |var: &str| (var == "OPENAI_KEYS").then(|| format!("{oa},{ob}"));
    let configs = [CredentialConfig::env_list("OPENAI_KEYS").label("pool")];
    let resolved = CredentialConfig::resolve_all_with(&configs, "keys", env).unwrap();
    printed.debug(&configs);
    printed.debug(&resolved);
    let openai_builder = Credentials::builder("openai")
        .credentials(resolved, |key| {
            OpenAi::builder()
                .base_url(server.base_url())
                .api_key(key)
                .build()
        })
        .key(
            Key::new(
                "c",
                OpenAi::builder()
                    .base_url(server.base_url())
                    .api_key(oc)
                    .build()
                    .unwrap(),
            )
            .tier(1),
        );
    printed.debug(&openai_builder);
    let openai = openai_builder.round_robin().build().unwrap();
    let azure_key = |key: &str| {
        Azure::builder()
            .endpoint(server.endpoint())
            .api_key(key)
            .build()
            .unwrap()
    };
    let azure = Credentials::builder("azure")
        .key(Key::new("za", azure_key(za)))
        .key(Key::new("zb", azure_key(zb)))
        .round_robin()
        .build()
        .unwrap();
    let anthropic = Credentials::builder("anthropic")
        .key(Key::new(
            "an",
            Anthropic::builder()
                .base_url(server.anthropic_base_url())
                .api_key(an)
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    printed.debug(&openai);
    printed.debug(&azure);
    printed.debug(&anthropic);
    printed.debug(&openai.get_ref("c"));

    let providers = Providers::builder()
        .provider("openai", openai.clone())
        .provider("azure", azure)
        .provider("anthropic", anthropic)
        .build()
        .unwrap();
    let cooldown = CooldownLayer::new();
    let fallback = ProviderFallbackLayer::builder()
        .group([
            "openai/gpt-4o",
            "anthropic/claude-3-5-haiku",
            "azure/gpt-4o",
        ])
        .named_group("doomed", ["openai/gpt-4o", "anthropic/claude-3-5-haiku"])
        .health(cooldown.health())
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(fallback)
        .layer(cooldown)
        .layer(RetryLayer::new(1))
        .service(providers.clone());
    printed.debug(&stack);

    let hello = |model: &str| ChatRequest::new(model, [Message::user("hello")]);
    // openai: quota, revoked, forbidden; anthropic: revoked; azure: 429, then served.
    let served = stack.clone().oneshot(hello("openai/gpt-4o")).await;
    assert_eq!(served.as_ref().unwrap().model(), "azure/gpt-4o");
    printed.result(&served);
    // Every key of both providers cooling: the all-failed error.
    let failed = stack.clone().oneshot(hello("doomed")).await;
    printed.result(&failed);
    for model in [
        "openai/gpt-4o",
        "anthropic/claude-3-5-haiku",
        "azure/gpt-4o",
    ] {
        let result = providers.clone().oneshot(hello(model)).await;
        printed.result(&result);
    }
    printed.debug(&server.calls());

    let logs = logs.text();
    let printed = printed.0.join("\n");
    for needle in ["key cooling down", "key attempt", "key=\"pool-2\""] {
        assert!(logs.contains(needle), "the run logged {needle:?}:\n{logs}");
    }
    assert!(
        printed.contains("(key pool-1)") && printed.contains("all 2 candidates failed"),
        "{printed}"
    );
    assert!(
        KEYS.iter().all(|k| server.key_count(k) > 0 || *k == zb),
        "every key was used"
    );
    if std::env::var_os("SHOW_PRINTED").is_some() {
        println!("{printed}");
    }
    for key in KEYS {
        assert!(!logs.contains(key), "{key} leaked into the logs:\n{logs}");
        assert!(
            !printed.contains(key),
            "{key} leaked into an output:\n{printed}"
        );
    }
}
