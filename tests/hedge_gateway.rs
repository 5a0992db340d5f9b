//! Hedged calls over real sockets through the gateway: a primary that is
//! silent, or slow to its first token, costs the hedge delay, not the
//! first-token deadline.

mod common;

use std::time::Duration;

use common::{ms, Http, Rig, Setup, BACKUP, PRIMARY, PRIMARY_UPSTREAM};
use llm_fallback::layers::hedge::{Hedge, HedgeBudget, LearnedDelay};
use llm_fallback::layers::timeout::StreamDeadlines;
use llm_fallback::mock::ServerReply;
use llm_fallback::server::{HEDGES_HEADER, MODEL_HEADER};
use tokio::time::Instant;

/// The deadlines of the issue: 30 s to the first token, 16 s to the head.
fn deadlines() -> StreamDeadlines {
    StreamDeadlines::new()
        .with_headers(Duration::from_secs(16))
        .with_first_token(Duration::from_secs(30))
        .with_idle(Duration::from_secs(30))
}

fn every_call() -> HedgeBudget {
    HedgeBudget::new(Duration::from_secs(10), 0, 1.0).unwrap()
}

async fn rig(hedge: Hedge) -> (Rig, Http) {
    let setup = Setup {
        deadlines: deadlines(),
        hedge: Some(hedge),
        ..Setup::default()
    };
    let rig = Rig::start(setup).await;
    let http = rig.http().await;
    (rig, http)
}

#[tokio::test]
async fn a_primary_that_never_answers_is_served_by_the_fallback_within_the_hedge_delay() {
    let (rig, http) = rig(Hedge::new(ms(300)).budget(every_call())).await;
    rig.primary.always(PRIMARY_UPSTREAM, ServerReply::hang());

    for stream in [true, false] {
        let started = Instant::now();
        let reply = http.chat(stream, false).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(reply.header(MODEL_HEADER), Some(BACKUP));
        assert_eq!(reply.header(HEDGES_HEADER), Some("1"));
    }
}

#[tokio::test]
async fn a_primary_whose_first_token_comes_after_20s_is_served_by_the_fallback_stream() {
    let (rig, http) = rig(Hedge::new(ms(300)).budget(every_call())).await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        ServerReply::text("late").first_token_after(Duration::from_secs(20)),
    );

    let started = Instant::now();
    let reply = http.chat(true, false).await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.header(MODEL_HEADER), Some(BACKUP));
    assert_eq!(reply.header(HEDGES_HEADER), Some("1"));
    assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);
    assert_eq!(rig.primary.call_count(PRIMARY_UPSTREAM), 1);
}

#[tokio::test]
async fn a_healthy_primary_starts_no_hedge_once_its_delay_is_learned() {
    let learned = LearnedDelay::builder()
        .min_observations(5)
        .floor(ms(500))
        .build()
        .unwrap();
    // Until learned, a delay no call reaches; then the learned one.
    let hedge = Hedge::new(Duration::from_secs(10))
        .learned(learned)
        .budget(every_call());
    let (rig, http) = rig(hedge.clone()).await;

    for _ in 0..20 {
        let reply = http.chat(true, false).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header(HEDGES_HEADER), None);
    }
    assert_eq!(hedge.delay(PRIMARY, PRIMARY), Some(ms(500)));
    assert_eq!(rig.backup.calls().len(), 0);
}
