//! An unreachable Redis is reported at most once per warning interval, and
//! its return once. Alone in its binary: tracing's callsite cache is
//! process-wide, so other tests running without a subscriber could hide the
//! events.

mod redis_support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_fallback::layers::cooldown::{CooldownLayer, RedisStore};
use llm_fallback::mock::MockProvider;
use llm_fallback::store::RedisConnection;
use llm_fallback::{ChatRequest, Message};
use redis_support::{cleanup, poll_until, unique_prefix, Mode, Proxy};
use tower::{ServiceBuilder, ServiceExt};

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn lines(&self, containing: &str) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.contains(containing))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn an_outage_warns_once_per_interval_and_its_end_is_reported_once() {
    let output = Output::default();
    let writer = output.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let prefix = unique_prefix("warnings");
    let proxy = Proxy::start().await;
    proxy.set(Mode::Blackhole);
    let connection = RedisConnection::builder(format!("redis://{}", proxy.addr))
        .prefix(&prefix)
        // A budget a loaded machine's Redis round trips fit in once it is
        // back: a slow one after the return would be a new outage.
        .op_timeout(Duration::from_millis(50))
        .retry_interval(Duration::from_millis(20))
        .warn_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let layer = CooldownLayer::builder()
        .store(Arc::new(RedisStore::new(&connection)))
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(MockProvider::new());
    let request = ChatRequest::new("openai/gpt-4o", [Message::user("hello")]);

    // Requests against a hung Redis until it has warned twice: dozens of
    // failed operations, the second warning an interval after the first.
    let start = std::time::Instant::now();
    let mut warned_at = Vec::new();
    poll_until("two outage warnings", async || {
        service.clone().oneshot(request.clone()).await.unwrap();
        let warned = output.lines("Redis store unavailable").len();
        if warned > warned_at.len() {
            warned_at.push(start.elapsed());
        }
        warned >= 2
    })
    .await;
    let warnings = output.lines("Redis store unavailable");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    // Seen after the request that logged it, which takes up to the 50 ms budget.
    let gap = warned_at[1] - warned_at[0];
    assert!(
        gap >= Duration::from_millis(950),
        "once per second: {gap:?}"
    );
    let last = warnings.last().unwrap();
    let failed: u64 = last
        .split("failed_ops=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        failed >= 10,
        "the warning counts the failures it stands for: {last}"
    );

    proxy.set(Mode::Forward);
    poll_until("the return is reported", async || {
        service.clone().oneshot(request.clone()).await.unwrap();
        !output.lines("Redis store reachable again").is_empty()
    })
    .await;
    for _ in 0..5 {
        service.clone().oneshot(request.clone()).await.unwrap();
    }
    assert_eq!(output.lines("Redis store reachable again").len(), 1);
    assert_eq!(
        output.lines("Redis store unavailable").len(),
        warnings.len(),
        "{:#?}",
        output.lines("Redis store")
    );

    cleanup(&prefix).await;
}
