//! What is tolerated because it is safe: a missing `[DONE]` after the finish
//! reason (finalized at once), usage asked upstream for every stream.
//! Library API and HTTP server. (A malformed event is not tolerated: see
//! `stream_faults.rs`.)

mod common;

use std::time::Duration;

use common::*;
use llm_fallback::chat::Role;
use serde_json::json;
use tokio::time::Instant;

#[tokio::test]
async fn a_stream_without_done_is_finalized_at_once_with_usage() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(5).without_done());

    let started = Instant::now();
    let response = rig.call(request_with_usage()).await.unwrap();
    let completion = response
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .expect("a complete answer, not a fault");
    // A wait for a [DONE] would end at the idle deadline, GENEROUS.
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "no wait for a [DONE]: {waited:?}"
    );
    assert_eq!(completion.choices[0].message.text(), words(0..5));
    assert_eq!(completion.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(completion.usage.unwrap().completion_tokens, 5);

    let started = Instant::now();
    let reply = rig.http().await.chat(true, true).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(reply.done(), "the server closes it properly");
    assert_eq!(reply.text(), words(0..5));
    let chunks = reply.chunks();
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn usage_is_asked_upstream_and_kept_from_callers_who_did_not_ask() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(PRIMARY_UPSTREAM, answer(4));

    let plain = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(text(&plain), words(0..4));
    assert!(plain.iter().flatten().all(|c| c.usage.is_none()));
    assert!(
        plain.iter().flatten().all(|c| !c.choices.is_empty()),
        "no usage-only chunk"
    );
    let sent = &rig.primary.calls()[0].body;
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "asked upstream"
    );

    let asked = items(rig.call(request_with_usage()).await.unwrap()).await;
    let usage = asked
        .last()
        .unwrap()
        .as_ref()
        .unwrap()
        .usage
        .clone()
        .unwrap();
    assert_eq!(usage.completion_tokens, 4);

    // An explicit `false` opts out, for endpoints that reject stream_options.
    let opted_out = request(true).with_extra("stream_options", json!({"include_usage": false}));
    let opted = items(rig.call(opted_out).await.unwrap()).await;
    assert_eq!(text(&opted), words(0..4));
    let sent = &rig.primary.calls()[2].body;
    assert_eq!(sent["stream_options"]["include_usage"], false);

    let reply = rig.http().await.chat(true, false).await;
    assert!(reply.chunks().iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        rig.primary.calls()[3].body["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn the_role_preamble_is_held_back_until_the_first_token() {
    // Head and role at once, the first token 300 ms later: the call
    // resolves at the token, with the preamble released in front of it.
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        answer(3).first_token_after(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let response = rig.call(request(true)).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let items = items(response).await;
    let first = items[0].as_ref().unwrap();
    assert_eq!(first.choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(text(&items), words(0..3));
}
