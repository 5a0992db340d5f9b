//! Faults before the first token are ordinary errors that Retry, Cooldown
//! and ProviderFallback handle unchanged, for streams as for complete
//! answers. Library API and HTTP server, on real time (see `common`), with
//! waits of a few hundred ms asked for by the mock.

mod common;

use common::*;
use llm_fallback::layers::retry::Backoff;
use llm_fallback::mock::ServerReply;
use llm_fallback::server::MODEL_HEADER;
use llm_fallback::ErrorKind;
use tokio::time::Instant;

/// When each call of the primary arrived, in seconds after `start`.
fn primary_calls(rig: &Rig, start: Instant) -> Vec<f64> {
    rig.primary
        .calls()
        .iter()
        .map(|c| secs(start, c.at))
        .collect()
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_no_earlier_than_it_asks() {
    let rig = Rig::start(Setup::default()).await;
    let limited =
        || ServerReply::error(429, "rate_limit_exceeded", "slow down").with_retry_after_ms(300.0);
    rig.primary
        .script(PRIMARY_UPSTREAM, [limited(), answer(3), limited()]);
    rig.primary.always(PRIMARY_UPSTREAM, answer(3));

    let start = Instant::now();
    let response = rig.call(request(true)).await.unwrap();
    assert_eq!(response.model(), PRIMARY);
    assert_eq!(text(&items(response).await), words(0..3));
    let at = primary_calls(&rig, start);
    assert_eq!(at.len(), 2, "{at:?}");
    assert!(at[1] - at[0] >= 0.3, "Retry-After honoured: {at:?}");

    rig.primary.clear_calls();
    let start = Instant::now();
    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), words(0..3));
    let at = primary_calls(&rig, start);
    assert_eq!(at.len(), 2, "{at:?}");
    assert!(at[1] - at[0] >= 0.3, "{at:?}");
    assert_eq!(rig.backup.calls().len(), 0);
}

#[tokio::test]
async fn persistent_429s_back_off_then_the_fallback_answers() {
    // Without jitter, so that each wait has a floor: 50 ms, then 100 ms.
    let backoff = Backoff::builder().base(ms(50)).no_jitter().build().unwrap();
    let rig = Rig::start(Setup {
        backoff,
        ..Setup::default()
    })
    .await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        ServerReply::error(429, "rate_limit_exceeded", "slow down"),
    );
    rig.backup.always(BACKUP_UPSTREAM, answer(3));

    let start = Instant::now();
    let response = rig.call(request(true)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    let at = primary_calls(&rig, start);
    assert_eq!(at.len(), 3, "two retries with backoff: {at:?}");
    assert!(
        at[1] - at[0] >= 0.05 && at[2] - at[1] >= 0.1,
        "each retry waits its backoff: {at:?}"
    );
    let kinds: Vec<_> = response.attempts().iter().map(|a| a.error).collect();
    assert_eq!(
        kinds,
        [Some(ErrorKind::RateLimited); 3]
            .into_iter()
            .chain([None])
            .collect::<Vec<_>>()
    );
    assert_eq!(text(&items(response).await), words(0..3));

    // 429s without Retry-After are one failure toward the breaker's ratio,
    // not a cooldown: the next call tries the primary again, then falls back.
    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.header(MODEL_HEADER), Some(BACKUP));
    assert_eq!(reply.text(), words(0..3));
    assert_eq!(rig.primary.calls().len(), 6);
}

#[tokio::test]
async fn a_500_once_is_answered_by_one_retry_of_the_same_model() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary.script(
        PRIMARY_UPSTREAM,
        [
            ServerReply::status(500),
            answer(3),
            ServerReply::status(500),
        ],
    );
    rig.primary.always(PRIMARY_UPSTREAM, answer(3));

    let response = rig.call(request(true)).await.unwrap();
    assert_eq!(response.model(), PRIMARY);
    assert_eq!(response.attempts().len(), 2);
    assert_eq!(response.attempts()[0].status.map(|s| s.as_u16()), Some(500));
    assert_eq!(text(&items(response).await), words(0..3));

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..3));
    assert_eq!(reply.header(MODEL_HEADER), Some(PRIMARY));
    assert_eq!(rig.primary.calls().len(), 4);
    assert_eq!(rig.backup.calls().len(), 0);
}

#[tokio::test]
async fn a_reset_before_headers_is_answered() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary.script(
        PRIMARY_UPSTREAM,
        [ServerReply::reset(), answer(3), ServerReply::reset()],
    );
    rig.primary.always(PRIMARY_UPSTREAM, answer(3));

    let response = rig.call(request(true)).await.unwrap();
    assert_eq!(response.model(), PRIMARY);
    assert_eq!(response.attempts()[0].error, Some(ErrorKind::Connect));
    assert_eq!(text(&items(response).await), words(0..3));

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), words(0..3));
    assert!(reply.done());
}

#[tokio::test]
async fn an_error_event_before_the_first_token_falls_back_like_any_error() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        answer(3).error_event_after(0, "server_error", "overloaded"),
    );
    rig.backup.always(BACKUP_UPSTREAM, answer(3));

    let response = rig.call(request(true)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    assert_eq!(rig.primary.calls().len(), 3, "retried as a server error");
    let items = items(response).await;
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(text(&items), words(0..3), "nothing of the failed attempts");
}

#[tokio::test]
async fn a_fallback_after_503s_names_the_fallbacks_model_and_reports_usage() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, ServerReply::status(503));
    rig.backup.always(BACKUP_UPSTREAM, answer(3));

    let response = rig.call(request(false)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    let usage = response.usage().expect("usage");
    assert_eq!(usage.completion_tokens, 3, "the fallback's answer only");
    assert_eq!(
        response
            .attempts()
            .iter()
            .filter(|a| a.is_success())
            .count(),
        1
    );

    let response = rig.call(request_with_usage()).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    let items = items(response).await;
    let chunks: Vec<_> = items.iter().flatten().collect();
    assert!(
        chunks.iter().all(|c| c.model == BACKUP_UPSTREAM),
        "the fallback's chunks"
    );
    assert_eq!(
        chunks
            .last()
            .unwrap()
            .usage
            .as_ref()
            .unwrap()
            .completion_tokens,
        3
    );

    let http = rig.http().await;
    let reply = http.chat(false, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header(MODEL_HEADER), Some(BACKUP));
    let body = reply.json();
    assert_eq!(body["model"], BACKUP);
    assert_eq!(body["usage"]["completion_tokens"], 3);

    let reply = http.chat(true, true).await;
    let chunks = reply.chunks();
    assert!(chunks.iter().all(|c| c["model"] == BACKUP));
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);
    assert!(reply.done());
}
