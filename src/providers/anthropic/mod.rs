//! A client of Anthropic's Messages API behind the OpenAI-shaped service
//! signature, so a fallback can cross vendors.
//!
//! [`Anthropic`] takes the same [`ChatRequest`](crate::ChatRequest) as the
//! OpenAI clients and answers the same `chat.completion` /
//! `chat.completion.chunk` shapes. The request is translated:
//!
//! | OpenAI | Anthropic |
//! |---|---|
//! | `system` and `developer` messages (anywhere) | `system` (a string; text blocks when one has `cache_control`) |
//! | `user` / `assistant` messages | turns; consecutive ones of a role merged into one |
//! | text parts, `cache_control` on parts | `text` blocks, `cache_control` kept |
//! | `image_url` with a base64 `data:` URL / an http(s) URL | `image` block with a `base64` / `url` source |
//! | assistant `tool_calls` | `tool_use` blocks (arguments parsed; invalid JSON is a `BadRequest`) |
//! | `tool` messages | `tool_result` blocks in a user turn |
//! | an assistant message last | a prefill (trailing whitespace trimmed: Anthropic rejects it) |
//! | `tools` (`function`) | `tools` (`name`, `description`, `input_schema`) |
//! | `tool_choice` `auto` / `none` / `required` / a function | `auto` / `none` / `any` / `tool` |
//! | `parallel_tool_calls: false` | `tool_choice.disable_parallel_tool_use` |
//! | `max_completion_tokens` or `max_tokens` | `max_tokens` (default [`DEFAULT_MAX_TOKENS`], see [`AnthropicBuilder::default_max_tokens`]) |
//! | `temperature` (above 1 clamped to 1), `top_p`, `top_k` | the same |
//! | `stop` (a string or a list) | `stop_sequences` |
//! | `user` | `metadata.user_id` |
//! | `stream` | `stream` |
//!
//! Every other parameter (`n`, `seed`, `response_format`, penalties,
//! `logprobs`, `stream_options` ...) has no equivalent: it is dropped with a
//! `debug` log naming it, never sent to fail the call. Message names and
//! non-text parts of system messages are dropped too; content parts of other
//! types are passed on as they are, so Anthropic's own blocks (`document`)
//! work. Role `function` (OpenAI's deprecated form of tools) is a
//! `BadRequest`.
//!
//! The answer comes back in OpenAI's shape: text blocks joined as the
//! content, `tool_use` blocks as `tool_calls` (input re-serialized as the
//! arguments), `stop_reason` as `finish_reason` (`end_turn` and
//! `stop_sequence` are `stop`, `max_tokens` is `length`, `tool_use` is
//! `tool_calls`, `refusal` is `content_filter`), and usage with cache tokens
//! counted in `prompt_tokens` and `prompt_tokens_details.cached_tokens`.
//! Streams are translated event by event (see the table on the stream
//! reader: text and tool-call deltas, a finish chunk, a usage chunk), resolve
//! at the first content chunk like the OpenAI clients' (see
//! [`streaming::commit`](crate::chat::streaming::commit)), and end with a
//! `StreamInterrupted` error item after a fault once content has flowed.
//!
//! Errors are classified as for the OpenAI clients: 429 `RateLimited` (with
//! `retry-after`), 529 `overloaded_error` and 5xx `Server`, 401 and 403
//! `Auth`, 404 `NotFound`, 400 "prompt is too long" `ContextWindowExceeded`,
//! other 400 `BadRequest`, connection failures `Connect`. Keys never appear
//! in `Debug`, logs or errors.
//!
//! # Example
//!
//! ```
//! use llm_fallback::providers::anthropic::Anthropic;
//! use llm_fallback::mock::{MockServer, ServerReply};
//! use llm_fallback::{ChatRequest, Message, Providers};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = MockServer::start().await;
//! server.always("claude-3-5-sonnet-20240620", ServerReply::text("hello from Claude"));
//!
//! let claude = Anthropic::builder()
//!     .base_url(server.anthropic_base_url())
//!     .api_key("sk-ant-test")
//!     .build()
//!     .unwrap();
//! let providers = Providers::builder().provider("anthropic", claude).build().unwrap();
//!
//! let request = ChatRequest::new(
//!     "anthropic/claude-3-5-sonnet-20240620",
//!     [Message::system("Be brief."), Message::user("hi")],
//! );
//! let response = providers.oneshot(request).await.unwrap();
//! assert_eq!(response.model(), "anthropic/claude-3-5-sonnet-20240620");
//! assert_eq!(response.text().as_deref(), Some("hello from Claude"));
//!
//! let sent = &server.calls()[0];
//! assert_eq!(sent.path, "/v1/messages");
//! assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
//! assert_eq!(sent.body["system"], "Be brief.");
//! assert_eq!(sent.body["max_tokens"], 4096);
//! # }
//! ```

mod client;
mod messages;
mod request;
mod response;
pub(crate) mod stream;

pub use client::{
    Anthropic, AnthropicBuilder, ANTHROPIC_BASE_URL, ANTHROPIC_VERSION, DEFAULT_MAX_TOKENS,
};
