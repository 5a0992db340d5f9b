//! Stream deadlines through the whole stack: a silent provider, a late first
//! token, a stall mid-stream. Library API and HTTP. Real time (see
//! `common`): the deadline under test is [`SHORT`], the mock silent for an
//! hour, every other deadline [`GENEROUS`].

mod common;

use std::time::Duration;

use common::*;
use llm_fallback::chat::{StreamFault, TimeoutKind};
use llm_fallback::layers::timeout::StreamDeadlines;
use llm_fallback::mock::ServerReply;
use llm_fallback::ErrorKind;
use tokio::time::Instant;

/// Longer than any test runs: silence only a deadline ends.
const AN_HOUR: Duration = Duration::from_secs(3600);
/// Well under [`GENEROUS`], well over [`SHORT`] and the time to call.
const SOON: Duration = Duration::from_secs(5);

/// The idle timer restarts when the stack passes a chunk on, a little before
/// the test sees it: a gap measured from there may be this much shorter.
const SEEN_LATE: Duration = Duration::from_millis(50);

/// Generous deadlines but `set`'s.
fn deadlines(set: impl FnOnce(StreamDeadlines) -> StreamDeadlines) -> StreamDeadlines {
    set(StreamDeadlines::new()
        .with_headers(GENEROUS)
        .with_first_token(GENEROUS)
        .with_idle(GENEROUS))
}

#[tokio::test]
async fn a_silent_provider_is_abandoned_at_the_headers_deadline_for_the_fallback() {
    let rig = Rig::start(Setup {
        deadlines: deadlines(|d| d.with_headers(SHORT)),
        ..Setup::default()
    })
    .await;
    rig.primary.always(PRIMARY_UPSTREAM, ServerReply::hang());
    rig.backup.always(BACKUP_UPSTREAM, answer(5));

    let started = Instant::now();
    let response = rig.call(request(true)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.model(), BACKUP);
    assert!(
        waited >= SHORT && waited < SOON,
        "the headers deadline, {SHORT:?}, not the first token's: took {waited:?}"
    );
    assert_eq!(rig.primary.call_count(PRIMARY_UPSTREAM), 1, "not retried");
    let first = &response.attempts()[0];
    assert_eq!(
        (first.model.as_str(), first.error),
        (PRIMARY, Some(ErrorKind::Timeout))
    );
    assert!(first.message.contains("headers deadline"), "{first}");
    assert_eq!(text(&items(response).await), words(0..5));

    let started = Instant::now();
    let reply = rig.http().await.chat(true, false).await;
    assert!(started.elapsed() < SOON, "{:?}", started.elapsed());
    assert_eq!(
        reply.header(llm_fallback::server::MODEL_HEADER),
        Some(BACKUP)
    );
    assert_eq!(reply.text(), words(0..5));
    assert!(reply.done());
    assert_eq!(rig.primary.call_count(PRIMARY_UPSTREAM), 2, "once per call");
}

#[tokio::test]
async fn a_first_token_later_than_its_deadline_moves_on_to_the_fallback() {
    let rig = Rig::start(Setup {
        deadlines: deadlines(|d| d.with_first_token(SHORT)),
        ..Setup::default()
    })
    .await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(5).first_token_after(AN_HOUR));
    rig.backup.always(BACKUP_UPSTREAM, answer(5));

    let started = Instant::now();
    let response = rig.call(request(true)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.model(), BACKUP);
    assert!(waited < SOON, "{waited:?}");
    assert!(waited >= SHORT, "the first-token deadline, {waited:?}");
    assert_eq!(rig.primary.call_count(PRIMARY_UPSTREAM), 1);
    assert!(response.attempts()[0]
        .message
        .contains("first-token deadline"));

    let started = Instant::now();
    let reply = rig.http().await.chat(true, false).await;
    assert!(started.elapsed() < SOON);
    assert_eq!(reply.chunks().last().unwrap()["model"], BACKUP);
    assert_eq!(reply.text(), words(0..5));
}

/// 60 chunks with an hour of silence after the 20th.
fn stalls_after_20() -> ServerReply {
    answer(60).stall_after(20, AN_HOUR)
}

/// Setup with the idle deadline [`SHORT`].
fn idle_short(setup: Setup) -> Setup {
    Setup {
        deadlines: deadlines(|d| d.with_idle(SHORT)),
        ..setup
    }
}

#[tokio::test]
async fn a_stall_is_recovered_within_the_idle_deadline_and_the_stack_keeps_serving() {
    let rig = Rig::start(idle_short(Setup::recovering())).await;
    rig.primary.script(
        PRIMARY_UPSTREAM,
        [stalls_after_20(), answer(3), stalls_after_20()],
    );
    rig.primary.always(PRIMARY_UPSTREAM, answer(3));
    rig.backup.always(BACKUP_UPSTREAM, answer(60));

    let response = rig.call(request(true)).await.unwrap();
    let mut stream = response.into_stream().unwrap();
    let mut got = String::new();
    let mut stalled_at = None;
    use futures_util::StreamExt;
    while let Some(item) = stream.next().await {
        got.push_str(&item.expect("recovered, no error").text());
        if got == words(0..20) {
            stalled_at = Some(Instant::now());
        }
    }
    let recovered = stalled_at.unwrap().elapsed();
    assert_eq!(got, words(0..60));
    assert!(recovered < SOON, "{recovered:?}");
    assert!(
        recovered >= SHORT - SEEN_LATE,
        "the idle deadline, {recovered:?}"
    );

    let next = rig.call(request(false)).await.unwrap();
    assert_eq!(next.model(), PRIMARY, "the primary serves the next call");
    assert_eq!(next.text().unwrap(), words(0..3));

    let http = rig.http().await;
    let reply = http.chat(true, false).await;
    assert_eq!(reply.text(), words(0..60));
    assert!(reply.done());
    let gap = reply.ended_at() - reply.content_chunk_at(20);
    assert!(gap < SOON, "{gap:?}");
    let next = http.chat(false, false).await;
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["model"], PRIMARY);
}

#[tokio::test]
async fn without_recovery_a_stall_ends_in_a_clean_error_at_the_idle_deadline() {
    let rig = Rig::start(idle_short(Setup::default())).await;
    rig.primary.script(
        PRIMARY_UPSTREAM,
        [stalls_after_20(), answer(3), stalls_after_20()],
    );
    rig.primary.always(PRIMARY_UPSTREAM, answer(3));

    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(text(&items), words(0..20));
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.stream_fault(), Some((StreamFault::Stall, 20)));
    assert_eq!(error.timeout_kind(), Some(TimeoutKind::Idle));
    assert_eq!(error.model(), Some(PRIMARY));
    assert_eq!(rig.call(request(false)).await.unwrap().model(), PRIMARY);

    let http = rig.http().await;
    let reply = http.chat(true, false).await;
    assert_eq!(reply.text(), words(0..20));
    assert!(!reply.done());
    assert_eq!(reply.error().unwrap()["code"], "stream_interrupted");
    let gap = reply.ended_at() - reply.content_chunk_at(20);
    assert!(gap >= SHORT - SEEN_LATE && gap < SOON, "{gap:?}");
    assert_eq!(http.chat(false, false).await.status, 200);
}

#[tokio::test]
async fn a_pause_shorter_than_the_idle_deadline_is_not_a_stall() {
    let rig = Rig::start(Setup {
        deadlines: deadlines(|d| d.with_idle(Duration::from_secs(2))),
        ..Setup::default()
    })
    .await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        answer(3).stall_after(1, Duration::from_millis(300)),
    );
    let started = Instant::now();
    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), words(0..3));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(rig.backup.calls().len(), 0);
}
