//! Usage-aware routing: per-deployment limits, usage counts, and strategies beside the weighted draw.
//!
//! A [`WeightedBalance`](crate::WeightedBalance) layer can be told each
//! deployment's [`Limits`] (requests and tokens per minute, as the provider
//! enforces them) and a [`RoutingStrategy`]. Before each call to a deployment
//! with limits it reserves the request and an estimate of its tokens with a
//! [`UsageStore`], atomically with the check that they fit: a deployment
//! that would exceed a limit is skipped like a cooling one (a
//! [`CoolingDown`](crate::ErrorKind::CoolingDown) attempt with
//! `upstream: false`, no upstream call) and the next candidate is tried.
//! Candidates whose last known usage fills a limit are not drawn while others
//! are available.
//!
//! **Tokens** are estimated before the call (a quarter of the prompt's text
//! bytes, plus `max_completion_tokens` or `max_tokens` when the request sets
//! them) and settled from the response's `usage` after it. A stream settles
//! when its usage chunk passes (OpenAI sends one only when the request asks
//! with `stream_options.include_usage`). An answer without usage, a stream
//! that ends, fails or is dropped before its usage chunk, and a call the
//! caller cancels settle an estimate instead: the prompt's plus a quarter of
//! the answer's text bytes seen so far, so the completion budget is free
//! again at once, not when the window ends. A failed call counts as a
//! request without tokens; a call refused below the balance layer (a cooling
//! model) counts as nothing.
//!
//! **Strategies** rank the available candidates; ties (and, for the lowest
//! latency, candidates within [`latency_buffer`](crate::BalanceBuilder::latency_buffer)
//! of the fastest, default 10 %) share the load by a weighted draw. Calls in
//! flight and latency are measured by each process; usage is whatever the
//! store shares. Counts live in memory ([`InMemoryUsage`], the default) or on
//! Redis ([`RedisUsage`]), so that several gateway replicas share one limit.
//!
//! # Example
//!
//! ```
//! use llm_fallback::mock::MockProvider;
//! use llm_fallback::layers::usage::{Limits, RoutingStrategy};
//! use llm_fallback::{ChatRequest, Message, WeightedBalanceLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mock = MockProvider::new();
//! let balance = WeightedBalanceLayer::builder()
//!     .route("gpt-4o", [("azure/gpt-4o", 1.0), ("openai/gpt-4o", 1.0)])
//!     .strategy(RoutingStrategy::LowestUsage)
//!     .limits("azure/gpt-4o", Limits::default().with_rpm(2))
//!     .limits("openai/gpt-4o", Limits::default().with_rpm(1))
//!     .build()
//!     .unwrap();
//! let mut service = ServiceBuilder::new().layer(balance).service(mock.clone());
//! let request = ChatRequest::new("gpt-4o", [Message::user("hi")]);
//!
//! for _ in 0..3 {
//!     service.ready().await.unwrap().call(request.clone()).await.unwrap();
//! }
//! // Both are full for this minute: the next call fails fast, without an upstream call.
//! let error = service.ready().await.unwrap().call(request).await.unwrap_err();
//! assert_eq!(error.kind(), llm_fallback::ErrorKind::CoolingDown);
//! assert_eq!(mock.call_count("azure/gpt-4o"), 2);
//! assert_eq!(mock.call_count("openai/gpt-4o"), 1);
//! # }
//! ```

mod config;
mod guard;
mod memory;
mod store;
pub(crate) mod tracked;
pub(crate) mod tracker;

#[cfg(feature = "redis")]
mod redis_usage;

pub use self::config::{Limits, RoutingStrategy};
pub use self::memory::InMemoryUsage;
#[cfg(feature = "redis")]
pub use self::redis_usage::RedisUsage;
pub use self::store::{Grant, Reservation, UsageStore, WindowUsage};
