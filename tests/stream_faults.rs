//! A stream that breaks in the middle is never a shorter answer that looks
//! complete: broken or unreadable events, huge indexes, endless lines,
//! missing finish reasons, garbled usage, content after `[DONE]`. Over real
//! sockets, through the library API and the HTTP server.

mod common;

use std::time::Duration;

use common::*;
use llm_fallback::chat::{AttemptLog, StreamFault};
use llm_fallback::layers::timeout::StreamDeadlines;
use llm_fallback::mock::MockServer;
use llm_fallback::providers::openai::{Azure, OpenAi};
use llm_fallback::{
    BoxChatService, ChatResponse, ErrorKind, ProviderFallbackLayer, Providers, RouteOptions,
    TimeoutLayer,
};
use tower::ServiceBuilder;

/// The rig's providers behind fallback (and recovery when asked), with no
/// retry and no cooldown: nothing waits on a real clock.
async fn rig(recover: bool) -> Rig {
    let primary = MockServer::start().await;
    let backup = MockServer::start().await;
    let providers = Providers::builder()
        .provider(
            "azure",
            Azure::builder()
                .endpoint(primary.endpoint())
                .api_key("azure-key")
                .build()
                .unwrap(),
        )
        .provider(
            "openai",
            OpenAi::builder()
                .base_url(backup.base_url())
                .api_key("sk-openai")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let fallback = ProviderFallbackLayer::builder()
        .group([PRIMARY, BACKUP])
        .options(RouteOptions::new().recover_streams(recover))
        .build()
        .unwrap();
    // Generous deadlines: a fault must be reported as itself, long before.
    let deadlines = StreamDeadlines::new()
        .with_first_token(Duration::from_secs(60))
        .with_idle(Duration::from_secs(60));
    let stack = ServiceBuilder::new()
        .layer(fallback)
        .layer(TimeoutLayer::attempt(Duration::from_secs(120)).with_stream_deadlines(deadlines))
        .service(providers);
    Rig {
        primary,
        backup,
        stack: BoxChatService::new(stack),
    }
}

async fn call_logged(
    rig: &Rig,
    mut request: llm_fallback::ChatRequest,
) -> (ChatResponse, AttemptLog) {
    let log = AttemptLog::of(&mut request);
    (rig.call(request).await.unwrap(), log)
}

#[tokio::test]
async fn a_content_chunk_cut_in_half_after_the_first_token_is_an_error_never_a_shorter_answer() {
    let rig = rig(false).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(10).broken_chunk_after(4));

    let (response, log) = call_logged(&rig, request(true)).await;
    let items = items(response).await;
    assert_eq!(text(&items), words(0..4), "nothing after the broken chunk");
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 4)));
    assert_eq!(e.model(), Some(PRIMARY));
    let attempts = log.snapshot();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error, Some(ErrorKind::StreamInterrupted));
    assert_eq!(attempts[0].malformed, 1, "{}", attempts[0]);

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), words(0..4));
    assert!(!reply.done(), "no [DONE] after a fault: {}", reply.body);
    let error = reply.error().expect("an in-band error event");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{error}"
    );
}

#[tokio::test]
async fn a_broken_chunk_before_the_first_token_fails_the_attempt_and_the_fallback_answers() {
    let rig = rig(false).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(5).broken_chunk_after(0));
    rig.backup.always(BACKUP_UPSTREAM, answer(3));

    let (response, log) = call_logged(&rig, request(true)).await;
    assert_eq!(response.model(), BACKUP);
    let items = items(response).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), words(0..3));
    let attempts = log.snapshot();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].error, Some(ErrorKind::Server));
    assert_eq!(attempts[0].malformed, 1, "{}", attempts[0]);
    assert!(attempts[1].is_success());
}

#[tokio::test]
async fn with_recovery_a_broken_chunk_is_finished_by_the_fallback() {
    let rig = rig(true).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(10).broken_chunk_after(4));
    rig.backup.always(BACKUP_UPSTREAM, answer(10));

    let (response, log) = call_logged(&rig, request(true)).await;
    let items = items(response).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), words(0..10), "the whole answer, once");
    let attempts = log.snapshot();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].error, Some(ErrorKind::StreamInterrupted));
    assert_eq!(attempts[0].malformed, 1);
    assert_eq!(attempts[1].model, BACKUP);

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..10));
    assert!(reply.done());
}

#[tokio::test]
async fn a_huge_choice_index_is_a_fault_not_billions_of_choices() {
    let rig = rig(false).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(6).huge_index_after(3));

    let response = rig.call(request(true)).await.unwrap();
    let e = response
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 3)));
    assert!(e.message().contains("4294967295"), "{e}");

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..3));
    assert!(!reply.done());
    assert!(reply.error().is_some());
}

#[tokio::test]
async fn an_endless_line_fails_at_the_event_limit_not_at_a_deadline() {
    let rig = rig(false).await;
    // 16 MiB with no newline, then silence: only the 4 MiB limit ends it.
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(6).endless_line_after(2, 16 << 20));
    rig.backup.always(BACKUP_UPSTREAM, answer(2));

    let response = rig.call(request(true)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), items(response))
        .await
        .expect("ends by itself");
    assert_eq!(text(&got), words(0..2));
    let e = got.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 2)));
    assert!(e.message().contains("larger than 4194304 bytes"), "{e}");

    // Before the first token, the attempt fails and the fallback answers.
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(6).endless_line_after(0, 16 << 20));
    let response = rig.call(request(true)).await.unwrap();
    assert_eq!(response.model(), BACKUP);
    assert_eq!(text(&items(response).await), words(0..2));
}

#[tokio::test]
async fn done_without_a_finish_reason_ends_the_answer_as_the_provider_sent_it() {
    let rig = rig(false).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(5).without_finish_reason());

    let completion = rig
        .call(request(true))
        .await
        .unwrap()
        .into_stream()
        .unwrap()
        .collect_completion()
        .await
        .expect("[DONE] is the provider's end marker");
    assert_eq!(completion.choices[0].message.text(), words(0..5));
    assert_eq!(completion.choices[0].finish_reason, None, "none was sent");

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..5));
    assert!(reply.done());
}

#[tokio::test]
async fn a_body_that_ends_with_neither_done_nor_a_finish_reason_is_a_cut() {
    let rig = rig(false).await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        answer(5).without_finish_reason().without_done(),
    );

    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(text(&items), words(0..5));
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Cut, 5)));

    let reply = rig.http().await.chat(true, false).await;
    assert!(!reply.done());
    assert!(reply.error().is_some());
}

#[tokio::test]
async fn a_second_done_and_content_after_done_never_reach_the_caller() {
    let rig = rig(false).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(3).after_done("EXTRA "));

    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), words(0..3));

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..3));
    assert!(!reply.body.contains("EXTRA"));
    assert_eq!(reply.body.matches("[DONE]").count(), 1);
    assert!(reply.done());

    rig.primary
        .always(PRIMARY_UPSTREAM, answer(3).after_done(""));
    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..3));
    assert_eq!(reply.body.matches("[DONE]").count(), 1);
}

#[tokio::test]
async fn a_garbled_usage_chunk_is_a_fault_not_an_answer_silently_without_usage() {
    let rig = rig(false).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(3).garbled_usage());

    let items = items(rig.call(request_with_usage()).await.unwrap()).await;
    assert_eq!(text(&items), words(0..3));
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 3)));

    let reply = rig.http().await.chat(true, true).await;
    assert!(!reply.done());
    assert!(reply.error().is_some());
}

#[tokio::test]
async fn a_preamble_without_content_past_its_limit_fails_the_attempt() {
    let rig = rig(false).await;
    let role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n";
    let body = role.repeat((2 << 20) / role.len())
        + "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n";
    rig.primary.always(
        PRIMARY_UPSTREAM,
        llm_fallback::mock::ServerReply::raw(200, "text/event-stream", body),
    );
    rig.backup.always(BACKUP_UPSTREAM, answer(2));

    let (response, log) = call_logged(&rig, request(true)).await;
    assert_eq!(response.model(), BACKUP);
    let attempts = log.snapshot();
    assert_eq!(attempts[0].error, Some(ErrorKind::Server));
    assert!(
        attempts[0].message.contains("before any content"),
        "{}",
        attempts[0]
    );
}

#[tokio::test]
async fn recovery_does_not_route_around_an_in_band_content_filter() {
    let rig = rig(true).await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        answer(6).error_event_after(2, "content_filter", "filtered"),
    );
    rig.backup.always(BACKUP_UPSTREAM, answer(6));

    let filtered = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(text(&filtered), words(0..2));
    let e = filtered.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.stream_fault(), Some((StreamFault::Protocol, 2)));
    assert_eq!(rig.backup.call_count(BACKUP_UPSTREAM), 0);

    // An in-band server error is finished on the fallback, like a cut.
    rig.primary.always(
        PRIMARY_UPSTREAM,
        answer(6).error_event_after(2, "server_error", "overloaded"),
    );
    let finished = items(rig.call(request(true)).await.unwrap()).await;
    assert!(finished.iter().all(Result::is_ok), "{finished:?}");
    assert_eq!(text(&finished), words(0..6));
}
