//! Quickstart: an Azure deployment with a wrong key, recovered by falling back
//! to OpenAI — on a machine with no API keys.
//!
//! Two local mock providers stand in for the real ones: "azure" answers every
//! call with 401 (as Azure does for a bad key) and "openai" is healthy. The
//! stack is the canonical one: total timeout, provider fallback, cooldown,
//! retry with backoff, per-attempt timeout, prepended messages.
//!
//! Run it with `cargo run --example quickstart`.

use std::time::Duration;

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::{
    Azure, ChatRequest, CooldownLayer, Message, OpenAi, PrependMessagesLayer,
    ProviderFallbackLayer, Providers, RetryLayer, TimeoutLayer,
};
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Stand-ins for the providers, on 127.0.0.1.
    let azure_server = MockServer::start().await;
    azure_server.always(
        "gpt-4o-mini",
        ServerReply::error(
            401,
            "invalid_api_key",
            "Access denied due to invalid subscription key.",
        ),
    );
    let openai_server = MockServer::start().await;
    openai_server.always(
        "gpt-4o-mini",
        ServerReply::text("Paris is the capital of France."),
    );

    // The provider clients, as you would build them for the real services.
    let azure = Azure::builder()
        .endpoint(azure_server.endpoint())
        .api_key("wrong-key")
        .build()?;
    let openai = OpenAi::builder()
        .base_url(openai_server.base_url())
        .api_key("sk-local")
        .build()?;
    let providers = Providers::builder()
        .provider("azure", azure)
        .provider("openai", openai)
        .build()?;

    // The reliability stack, outermost first.
    let cooldown = CooldownLayer::new();
    let stack = ServiceBuilder::new()
        .layer(TimeoutLayer::total(Duration::from_secs(30)))
        .layer(
            ProviderFallbackLayer::builder()
                .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini"])
                .health(cooldown.health())
                .build()?,
        )
        .layer(cooldown)
        .layer(RetryLayer::new(2))
        .layer(TimeoutLayer::attempt(Duration::from_secs(10)))
        .layer(
            PrependMessagesLayer::builder()
                .all_models([Message::system("Answer in one sentence.")])
                .build()?,
        )
        .service(providers);

    let request = ChatRequest::new(
        "azure/gpt-4o-mini",
        [Message::user("What is the capital of France?")],
    );
    println!("Asking azure/gpt-4o-mini: \"What is the capital of France?\"");
    let response = stack.clone().oneshot(request.clone()).await?;
    report(&response);
    println!(
        "A 401 is not worth retrying on the same model, so the stack fell back at once. \
         One 401 is not a trend; five failures in a row cool the model down."
    );
    for _ in 0..4 {
        stack.clone().oneshot(request.clone()).await?;
    }

    println!();
    println!("Asking again, after four more calls that azure failed:");
    let response = stack.oneshot(request).await?;
    report(&response);
    println!("The cooling azure model was skipped without a request.");
    println!(
        "Upstream calls in all: azure {}, openai {}.",
        azure_server.call_count("gpt-4o-mini"),
        openai_server.call_count("gpt-4o-mini")
    );
    Ok(())
}

fn report(response: &llm_fallback::ChatResponse) {
    for (i, attempt) in response.attempts().iter().enumerate() {
        match &attempt.error {
            None => println!("  attempt {}: {} answered", i + 1, attempt.model),
            Some(_) if !attempt.upstream => println!(
                "  attempt {}: {} skipped, no request sent ({})",
                i + 1,
                attempt.model,
                attempt.message
            ),
            Some(kind) => println!(
                "  attempt {}: {} failed: {} ({kind}): {}",
                i + 1,
                attempt.model,
                attempt.describe(),
                attempt.message
            ),
        }
    }
    println!(
        "  served by {}: {}",
        response.model(),
        response.text().unwrap_or_default()
    );
}
