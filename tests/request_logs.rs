//! The gateway's one log line per chat call, written when the call ends:
//! completed, failed and recovered streams each produce exactly one
//! `chat completion` line with what happened. Real sockets, the real clock
//! (every answer is instant), and a subscriber of this test's own thread.
#![cfg(all(feature = "server", feature = "mock", feature = "openai"))]

mod common;
mod log_capture;
use log_capture::LogBuffer;

use common::*;
use serde_json::json;

trait RequestLines {
    /// The request lines.
    fn requests(&self) -> Vec<String>;
    /// The one request line.
    fn only_request(&self) -> String;
}

impl RequestLines for LogBuffer {
    fn requests(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains("chat completion"))
            .map(str::to_owned)
            .collect()
    }

    fn only_request(&self) -> String {
        let lines = self.requests();
        assert_eq!(lines.len(), 1, "exactly one line: {lines:#?}");
        lines.into_iter().next().unwrap()
    }
}

/// The value of `name=` in a line (up to the next space).
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len()
        + 2;
    let rest = &line[start..];
    &rest[..rest.find(' ').unwrap_or(rest.len())]
}

fn quoted(model: &str) -> String {
    format!("{model:?}")
}

#[tokio::test]
async fn a_completed_stream_is_logged_once_when_it_ends() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(PRIMARY_UPSTREAM, answer(10));

    let reply = rig.http().await.chat(true, true).await;
    assert!(reply.done());
    let line = logs.only_request();
    assert_eq!(field(&line, "outcome"), "completed", "{line}");
    assert_eq!(field(&line, "status"), "200");
    assert_eq!(field(&line, "stream"), "true");
    assert_eq!(field(&line, "model"), quoted(PRIMARY));
    assert_eq!(field(&line, "served"), quoted(PRIMARY));
    assert_eq!(field(&line, "recovered_from"), "[]");
    assert_eq!(field(&line, "upstream_calls"), "1");
    assert_eq!(field(&line, "skips"), "0");
    let tokens = field(&line, "tokens");
    assert!(tokens.ends_with("+10"), "10 answer words: {line}");
    let ttft: u64 = field(&line, "ttft_ms").parse().unwrap();
    let total: u64 = field(&line, "total_ms").parse().unwrap();
    assert!(ttft <= total, "{line}");
}

#[tokio::test]
async fn a_stream_failed_after_its_headers_is_not_logged_as_200_and_done() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let rig = Rig::start(Setup::default()).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(60).cut_after(40));

    let reply = rig.http().await.chat(true, false).await;
    assert_eq!(reply.status, 200, "the headers said 200");
    assert!(reply.error().is_some());
    let line = logs.only_request();
    assert_eq!(field(&line, "outcome"), "failed", "{line}");
    assert_eq!(field(&line, "status"), "502", "the in-band error's status");
    assert_eq!(field(&line, "error"), "stream_interrupted");
    assert_eq!(field(&line, "upstream_calls"), "1");
    assert_eq!(field(&line, "tokens"), "unknown", "no usage reported");
}

#[tokio::test]
async fn a_recovered_stream_names_who_finished_it_and_who_was_cut() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let rig = Rig::start(Setup::recovering()).await;
    rig.primary
        .always(PRIMARY_UPSTREAM, answer(60).cut_after(40));
    rig.backup.always(BACKUP_UPSTREAM, answer(60));

    let reply = rig.http().await.chat(true, false).await;
    assert!(reply.done());
    assert_eq!(reply.text(), words(0..60));
    let line = logs.only_request();
    assert_eq!(field(&line, "outcome"), "completed", "{line}");
    assert_eq!(field(&line, "status"), "200");
    assert_eq!(field(&line, "served"), quoted(BACKUP));
    assert_eq!(
        field(&line, "recovered_from"),
        format!("[{}]", quoted(PRIMARY))
    );
    assert_eq!(field(&line, "upstream_calls"), "2");
}

#[tokio::test]
async fn a_failed_call_and_a_json_answer_are_logged_once_each() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(
        PRIMARY_UPSTREAM,
        llm_fallback::mock::ServerReply::status(401),
    );
    rig.backup.always(
        BACKUP_UPSTREAM,
        llm_fallback::mock::ServerReply::status(401),
    );
    let http = rig.http().await;

    let reply = http.chat(false, false).await;
    assert_eq!(reply.status, 502);
    let line = logs.only_request();
    assert_eq!(field(&line, "outcome"), "failed", "{line}");
    assert_eq!(field(&line, "status"), "502");
    assert_eq!(field(&line, "stream"), "false");
    assert_eq!(field(&line, "upstream_calls"), "2");

    rig.primary.always(PRIMARY_UPSTREAM, answer(3));
    http.chat(false, false).await;
    let lines = logs.requests();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(field(&lines[1], "outcome"), "completed", "{}", lines[1]);
    assert_eq!(field(&lines[1], "status"), "200");
}

#[tokio::test]
async fn foreign_strings_are_logged_escaped() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let rig = Rig::start(Setup::default()).await;
    let model = "openai/gpt-4o\n\"forged=1";
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    rig.http().await.post(&body).await;
    let line = logs.only_request();
    assert!(
        line.contains(r#"model="openai/gpt-4o\n\"forged=1""#),
        "{line}"
    );
}

#[tokio::test]
async fn a_hedged_call_logs_how_many_hedges_started_and_that_one_won() {
    use llm_fallback::layers::hedge::{Hedge, HedgeBudget};
    use llm_fallback::mock::ServerReply;

    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let every_call = HedgeBudget::new(std::time::Duration::from_secs(10), 0, 1.0).unwrap();
    let setup = Setup {
        hedge: Some(Hedge::new(ms(200)).budget(every_call)),
        ..Setup::default()
    };
    let rig = Rig::start(setup).await;
    rig.primary.always(PRIMARY_UPSTREAM, ServerReply::hang());

    let reply = rig.http().await.chat(false, false).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let line = logs.only_request();
    assert_eq!(field(&line, "outcome"), "completed", "{line}");
    assert_eq!(field(&line, "served"), quoted(BACKUP), "{line}");
    assert_eq!(field(&line, "hedges"), "1", "{line}");
    assert_eq!(field(&line, "hedge_won"), "true", "{line}");
}

#[tokio::test]
async fn an_unhedged_call_logs_no_hedge() {
    let (logs, _guard) = LogBuffer::capture(tracing::Level::INFO);
    let rig = Rig::start(Setup::default()).await;
    rig.primary.always(PRIMARY_UPSTREAM, answer(3));

    let reply = rig.http().await.chat(false, false).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let line = logs.only_request();
    assert_eq!(field(&line, "hedges"), "0", "{line}");
    assert_eq!(field(&line, "hedge_won"), "false", "{line}");
}
