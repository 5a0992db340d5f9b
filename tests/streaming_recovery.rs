//! Streams cut after the commit point: finished on the fallback when
//! recovery is on (exactly once), a clean `StreamInterrupted` otherwise, and
//! the original fault when recovery fails. Library API and HTTP server.

mod common;

use common::*;
use llm_fallback::chat::{AttemptLog, Role, StreamFault};
use llm_fallback::mock::ServerReply;
use llm_fallback::ErrorKind;

/// 60 chunks, the body broken after the 40th.
fn cut_at_40() -> ServerReply {
    answer(60).cut_after(40)
}

#[tokio::test]
async fn a_cut_stream_is_finished_by_the_fallback_exactly_once() {
    let rig = Rig::start(Setup::recovering()).await;
    rig.primary
        .script(PRIMARY_UPSTREAM, [cut_at_40(), cut_at_40()]);
    // Not declared to support prefill: it restarts, and the repeated
    // first 40 chunks are swallowed.
    rig.backup.always(BACKUP_UPSTREAM, answer(60));

    let mut request = request_with_usage();
    let log = AttemptLog::of(&mut request);
    let response = rig.call(request).await.unwrap();
    assert_eq!(response.model(), PRIMARY, "the primary served first");
    let items = items(response).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), words(0..60), "the whole answer, exactly once");
    assert_eq!(content_chunks(&items), 60);
    let last = items.last().unwrap().as_ref().unwrap();
    assert_eq!(
        last.model, PRIMARY,
        "the last chunks still name the model the caller saw first"
    );
    assert!(last.usage.is_some(), "usage closes the stream");
    let attempts = log.snapshot();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        (attempts[0].model.as_str(), attempts[0].error),
        (PRIMARY, Some(ErrorKind::StreamInterrupted))
    );
    assert_eq!(
        (attempts[1].model.as_str(), attempts[1].error),
        (BACKUP, None)
    );
    assert!(
        rig.backup.calls()[0]
            .texts()
            .iter()
            .all(|t| !t.contains("w00")),
        "a restart, not a prefill"
    );

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), words(0..60));
    assert!(reply.done(), "a finished answer ends with [DONE]");
    let chunks = reply.chunks();
    assert!(chunks.iter().all(|c| c["model"] == PRIMARY), "one stream");
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "not asked for"
    );
}

#[tokio::test]
async fn a_prefill_target_gets_the_partial_answer_and_streams_only_the_rest() {
    let rig = Rig::start(Setup::recovering_with_prefill()).await;
    rig.primary.always(PRIMARY_UPSTREAM, cut_at_40());
    rig.backup.always(
        BACKUP_UPSTREAM,
        ServerReply::text(words(40..60)).in_chunks(20),
    );

    let items = items(rig.call(request_with_usage()).await.unwrap()).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), words(0..60));
    assert_eq!(content_chunks(&items), 60);
    let roles = items
        .iter()
        .flatten()
        .filter(|c| c.choices.iter().any(|c| c.delta.role.is_some()));
    assert_eq!(roles.count(), 1, "one role preamble");
    let usage = items
        .last()
        .unwrap()
        .as_ref()
        .unwrap()
        .usage
        .clone()
        .unwrap();
    assert_eq!(usage.completion_tokens, 20, "the continuation's tokens");

    let call = &rig.backup.calls()[0];
    let last = call.messages.last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert_eq!(last.text(), words(0..40), "the partial answer as prefill");

    let reply = rig.http().await.chat(true, true).await;
    assert_eq!(reply.text(), words(0..60));
    assert!(reply.done());
    let chunks = reply.chunks();
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 20);
    assert_eq!(chunks.last().unwrap()["model"], PRIMARY);
}

#[tokio::test]
async fn without_recovery_a_cut_is_a_clean_stream_interrupted_never_a_truncated_success() {
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(PRIMARY_UPSTREAM, cut_at_40());

    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(text(&items), words(0..40));
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.stream_fault(), Some((StreamFault::Cut, 40)));
    assert_eq!(error.model(), Some(PRIMARY));
    assert_eq!(rig.backup.calls().len(), 0, "no recovery asked for");

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.status, 200, "the stream had started");
    assert_eq!(reply.text(), words(0..40));
    assert!(
        !reply.body.contains("[DONE]"),
        "never a complete-looking stream"
    );
    let error = reply.error().expect("an in-band error event");
    assert_eq!(error["code"], "stream_interrupted");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("cut after 40 chunks"));
}

#[tokio::test]
async fn a_fallback_rejecting_the_prefill_leaves_the_original_cut_as_the_error() {
    let rig = Rig::start(Setup::recovering_with_prefill()).await;
    rig.primary.always(PRIMARY_UPSTREAM, cut_at_40());
    rig.backup.always(
        BACKUP_UPSTREAM,
        ServerReply::error(
            400,
            "invalid_request_error",
            "assistant prefill is not supported",
        ),
    );

    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(text(&items), words(0..40));
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted, "{error}");
    assert_eq!(error.stream_fault(), Some((StreamFault::Cut, 40)));
    assert_eq!(error.model(), Some(PRIMARY));
    assert_eq!(error.status(), None, "not the 400");
    let attempts: Vec<_> = error
        .attempts()
        .iter()
        .map(|a| (a.model.as_str(), a.error, a.status.map(|s| s.as_u16())))
        .collect();
    assert_eq!(
        attempts,
        [
            (PRIMARY, Some(ErrorKind::StreamInterrupted), None),
            (BACKUP, Some(ErrorKind::BadRequest), Some(400)),
        ],
        "the log shows both"
    );

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.text(), words(0..40));
    assert!(!reply.done());
    let error = reply.error().expect("an in-band error event");
    assert_eq!(error["code"], "stream_interrupted");
    assert!(!error["message"].as_str().unwrap().contains("prefill"));
}

#[tokio::test]
async fn a_restart_that_diverges_stops_with_the_original_fault() {
    let rig = Rig::start(Setup::recovering()).await;
    rig.primary.always(PRIMARY_UPSTREAM, cut_at_40());
    rig.backup.always(
        BACKUP_UPSTREAM,
        ServerReply::text("a different story altogether"),
    );

    let items = items(rig.call(request(true)).await.unwrap()).await;
    assert_eq!(
        text(&items),
        words(0..40),
        "nothing of the other answer leaks"
    );
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.stream_fault(), Some((StreamFault::Cut, 40)));
    assert_eq!(error.model(), Some(PRIMARY));
    assert_eq!(error.attempts().len(), 2);
    assert_eq!(rig.backup.calls().len(), 1);
}

#[tokio::test]
async fn tool_call_streams_are_never_spliced() {
    let rig = Rig::start(Setup::recovering()).await;
    let event = |args: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "call_1", "type": "function",
                 "function": {"name": "lookup", "arguments": args}}]}}]})
        )
    };
    // The body ends after two fragments, with no finish reason: a cut.
    let body = event("{\"city\": ") + &event("\"Par");
    rig.primary.always(
        PRIMARY_UPSTREAM,
        ServerReply::raw(200, "text/event-stream", body),
    );

    let items = items(rig.call(request(true)).await.unwrap()).await;
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.stream_fault(), Some((StreamFault::Cut, 2)));
    assert_eq!(rig.backup.calls().len(), 0, "no recovery of a tool call");
}

/// Real sockets and the real clock (no paused time while sockets are busy):
/// the answer is instant, nothing waits.
#[tokio::test]
async fn a_recovered_stream_keeps_the_chunk_identity_the_caller_saw_first() {
    let rig = Rig::start(Setup::recovering()).await;
    let fields = |id: &str, created: u64, fingerprint: &str| serde_json::json!({"id": id, "created": created, "system_fingerprint": fingerprint});
    rig.primary.always(
        PRIMARY_UPSTREAM,
        cut_at_40().with_fields(fields("chatcmpl-primary", 1_700_000_001, "fp_primary")),
    );
    rig.backup.always(
        BACKUP_UPSTREAM,
        answer(60).with_fields(fields("chatcmpl-backup", 1_700_000_002, "fp_backup")),
    );

    let reply = rig.http().await.chat(true, true).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), words(0..60), "the whole answer, once");
    assert!(reply.done());
    assert_eq!(rig.backup.calls().len(), 1, "the backup finished it");
    let chunks = reply.chunks();
    assert!(chunks.len() > 60, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert_eq!(chunk["id"], "chatcmpl-primary", "{chunk}");
        assert_eq!(chunk["created"], 1_700_000_001, "{chunk}");
        assert_eq!(chunk["model"], PRIMARY, "{chunk}");
        assert_eq!(chunk["system_fingerprint"], "fp_primary", "{chunk}");
    }
    assert!(
        chunks.last().unwrap()["usage"]["completion_tokens"].as_u64() > Some(0),
        "the usage chunk, from the backup, is stamped too"
    );
}
