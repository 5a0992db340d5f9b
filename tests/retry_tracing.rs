//! The Retry layer's tracing: a span per attempt and a debug event per delay.
//! Alone in its binary: tracing's callsite cache is process-wide, so other
//! tests running in parallel without a subscriber could hide the spans.

use std::time::Duration;

use llm_fallback::layers::retry::{Backoff, Jitter, RetryLayer};
use llm_fallback::mock::{MockProvider, MockReply};
use llm_fallback::{ChatRequest, ErrorKind, Message, SharedRng};
use tower::{Layer, ServiceExt};

const A: &str = "azure/gpt-4o";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, [Message::user("hello")])
}

/// 100 ms, 200 ms, 400 ms ... exactly.
fn layer(max_retries: u32) -> RetryLayer {
    let backoff = Backoff::builder()
        .base(ms(100))
        .factor(2.0)
        .cap(ms(1000))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    RetryLayer::builder()
        .max_retries(max_retries)
        .backoff(backoff)
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap()
}

mod tracing_capture {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    pub(crate) type Fields = BTreeMap<String, String>;

    /// Collects closed spans and events with their fields.
    #[derive(Clone, Default)]
    pub(crate) struct Capture {
        pub(crate) spans: Arc<Mutex<Vec<(String, Fields)>>>,
        pub(crate) events: Arc<Mutex<Vec<Fields>>>,
    }

    struct Visitor<'a>(&'a mut Fields);

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let mut fields = Fields::new();
            attrs.record(&mut Visitor(&mut fields));
            ctx.span(id).unwrap().extensions_mut().insert(fields);
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            let span = ctx.span(id).unwrap();
            let mut ext = span.extensions_mut();
            values.record(&mut Visitor(ext.get_mut::<Fields>().unwrap()));
        }
        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            let span = ctx.span(&id).unwrap();
            let fields = span.extensions().get::<Fields>().cloned().unwrap();
            self.spans
                .lock()
                .unwrap()
                .push((span.name().to_owned(), fields));
        }
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            self.events.lock().unwrap().push(fields);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_attempt_has_a_span_and_each_delay_a_debug_event() {
    use tracing_subscriber::layer::SubscriberExt;

    let capture = tracing_capture::Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let mock = MockProvider::new();
    mock.script(
        A,
        [
            MockReply::error(ErrorKind::Server).after(ms(40)),
            MockReply::error(ErrorKind::RateLimited),
            MockReply::text("ok"),
        ],
    );
    layer(2).layer(mock).oneshot(request(A)).await.unwrap();

    let spans = capture.spans.lock().unwrap().clone();
    let attempts: Vec<_> = spans
        .iter()
        .filter(|(name, _)| name == "retry_attempt")
        .map(|(_, f)| {
            let field = |k: &str| f.get(k).cloned().unwrap_or_default();
            (
                field("model"),
                field("attempt"),
                field("outcome"),
                field("latency_ms"),
            )
        })
        .collect();
    let expected = [
        ("1", "server", "40.0"),
        ("2", "rate_limited", "0.0"),
        ("3", "ok", "0.0"),
    ]
    .map(|(n, outcome, latency)| {
        (
            A.to_owned(),
            n.to_owned(),
            outcome.to_owned(),
            latency.to_owned(),
        )
    });
    assert_eq!(attempts, expected);

    let delays: Vec<_> = capture
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|f| f.get("message").map(String::as_str) == Some("retrying"))
        .map(|f| f["delay_ms"].clone())
        .collect();
    assert_eq!(delays, ["100.0", "200.0"]);
}
