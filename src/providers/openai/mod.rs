//! Clients of OpenAI-compatible and Azure OpenAI chat-completions endpoints.
//!
//! [`OpenAi`] and [`Azure`] are the leaf services of a stack: they send the
//! request's JSON (prepended messages first, unknown fields untouched), stream
//! or not, and map every failure to a typed [`ChatError`](crate::ChatError):
//!
//! | what happened | kind |
//! |---|---|
//! | 429, `insufficient_quota`, `rate_limit_exceeded` | `RateLimited` (with `retry_after()` from `retry-after-ms` / `Retry-After`) |
//! | 401, 403 | `Auth` |
//! | 404, `model_not_found` | `NotFound` |
//! | 400 `context_length_exceeded`, "maximum context length", "prompt is too long" | `ContextWindowExceeded` |
//! | 400 `content_policy_violation`, `content_filter`, Azure's `ResponsibleAIPolicyViolation` | `ContentFilter` |
//! | other 400, 422 and 4xx | `BadRequest` |
//! | 408 | `Timeout` |
//! | 5xx, 529 | `Server` |
//! | refused, reset, DNS, TLS, closed before the response head, a body that breaks off or ends before its `Content-Length` | `Connect` |
//! | connect or read timeout of the client's own HTTP client ([`DEFAULT_CONNECT`](crate::layers::timeout::DEFAULT_CONNECT), [`DEFAULT_READ`](crate::layers::timeout::DEFAULT_READ)) | `Timeout` |
//! | a 2xx body that is not a completion (no choices, a choice that says nothing) | `Server` ("malformed response body") |
//! | a 2xx body over [`MAX_COMPLETION_BYTES`](crate::providers::http_error::MAX_COMPLETION_BYTES) | `Server` |
//!
//! Error bodies are read up to [`MAX_ERROR_BYTES`](crate::providers::http_error::MAX_ERROR_BYTES);
//! `Retry-After` is clamped to [`MAX_RETRY_AFTER`](crate::providers::http_error::MAX_RETRY_AFTER).
//!
//! The provider's message becomes the error's message, its code
//! [`code()`](crate::ChatError::code). Keys never appear in `Debug`, logs or
//! errors. The clients never retry: the layers above do.
//!
//! Streams resolve at the first content chunk (see
//! [`streaming::commit`](crate::chat::streaming::commit)), so a failure before it is
//! an ordinary error. After it, a cut body or an in-band error event is an
//! error item of kind `StreamInterrupted`, never a silent end; a body that
//! ends without `[DONE]` after every choice's finish reason is a complete
//! answer, and `[DONE]` ends the answer even without a finish reason (the
//! provider's own end marker; nothing after it is read). An event that
//! cannot be read is a fault too (kind `Server` before the first content
//! chunk, `StreamInterrupted` after), counted in a
//! [`MalformedChunks`](crate::chat::MalformedChunks) in the response's extensions;
//! keep-alives (empty `data:`) and comments are skipped. The usage chunk
//! that follows the finish reason ends the stream at once, `[DONE]` or not.
//!
//! Every stream reports usage: when the caller's request does not mention
//! `stream_options.include_usage`, the clients ask for it upstream and strip
//! it (and the usage-only chunk) from what the caller receives. Setting it
//! to `false` opts out, for endpoints that reject `stream_options`.
//!
//! A [`HeadersDeadline`](crate::chat::streaming::HeadersDeadline) in the request's
//! extensions (set by the attempt [`Timeout`](crate::Timeout) layer's
//! [`StreamDeadlines`](crate::layers::timeout::StreamDeadlines)) bounds connect plus response
//! head: past it the call fails with
//! [`TimeoutKind::Headers`](crate::chat::TimeoutKind::Headers).
//!
//! # Example
//!
//! ```
//! use llm_fallback::mock::{MockServer, ServerReply};
//! use llm_fallback::providers::openai::{Azure, OpenAi};
//! use llm_fallback::{ChatRequest, ErrorKind, Message, Providers};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = MockServer::start().await;
//! server.always("gpt-4o", ServerReply::status(401));
//!
//! let providers = Providers::builder()
//!     .provider("azure", Azure::builder().endpoint(server.endpoint()).api_key("bad").build().unwrap())
//!     .provider("openai", OpenAi::builder().base_url(server.base_url()).api_key("sk-ok").build().unwrap())
//!     .build()
//!     .unwrap();
//!
//! let err = providers.clone().oneshot(ChatRequest::new("azure/gpt-4o", [Message::user("hi")])).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Auth);
//! assert_eq!(err.model(), Some("azure/gpt-4o"));
//!
//! let ok = providers.oneshot(ChatRequest::new("openai/gpt-4o-mini", [Message::user("hi")])).await.unwrap();
//! assert_eq!(ok.model(), "openai/gpt-4o-mini");
//! assert_eq!(ok.text().as_deref(), Some("ok from gpt-4o-mini"));
//! # }
//! ```

mod azure;
mod client;
pub(crate) mod wire;

pub use azure::{Azure, AzureBuilder, AZURE_API_VERSION};
pub use client::{OpenAi, OpenAiBuilder, OPENAI_BASE_URL};
