//! Composable [tower] middleware that keeps LLM chat calls working when
//! providers fail.
//!
//! Every piece is a `Service<ChatRequest, Response = ChatResponse, Error =
//! ChatError>`: the provider clients at the leaf, the [`Providers`] router
//! above them, and the reliability layers stacked with
//! `tower::ServiceBuilder`. Errors are classified once into an [`ErrorKind`],
//! and every layer decides by kind:
//!
//! | kind | retry same model | fall back | cools the model |
//! |---|---|---|---|
//! | `RateLimited` | yes, after `Retry-After` or backoff | yes | yes, for `Retry-After` when given |
//! | `Server` | yes | yes | counts toward tripping |
//! | `Timeout` | no (a silent route only multiplies the wait) | yes | counts |
//! | `Connect` | yes | yes | counts |
//! | `Auth` | no | yes | yes |
//! | `NotFound` | no | yes | yes |
//! | `ContextWindowExceeded` | no | only to larger-context routes | no |
//! | `ContentFilter` | no | no by default | no |
//! | `BadRequest` | no | no by default | no |
//! | `StreamInterrupted` | no | with mid-stream recovery | counts |
//! | `CoolingDown` | no | yes, without counting an attempt | — |
//! | `Cancelled` / `Config` | no | no | no |
//!
//! A streamed answer is never cut short silently: a cut, a stall, an in-band
//! error or a stream event that cannot be read after the first token is a
//! `StreamInterrupted` item; before it, the same faults fail the attempt
//! (an unreadable event as `Server`), so retry and fallback apply. Only what
//! carries nothing (SSE comments, keep-alives, Anthropic's `ping`) is
//! skipped; see [`MalformedChunks`] and the limits in [`streaming`].
//!
//! [tower]: https://docs.rs/tower

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

mod attempt;
mod clamp;
mod collect;
mod error;
mod future;
mod health;
mod malformed;
mod model;
mod per_model;
mod request;
mod response;
mod rng;
mod route;
mod secret;
#[cfg(any(feature = "openai", feature = "anthropic"))]
mod transport;

pub mod balance;
pub mod config;
pub mod cooldown;
pub mod credentials;
pub mod fallback;
pub mod http_error;
pub mod prepend;
pub mod providers;
pub mod retry;
pub mod select;
pub mod stack;
pub mod store;
pub mod streaming;
pub mod timeout;
pub mod usage;

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "mock")]
pub mod mock;
#[cfg(feature = "openai")]
pub mod openai;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "anthropic")]
pub use anthropic::Anthropic;
pub use attempt::{Attempt, AttemptLog, AttemptSummary, LogScope, MaxUpstreamCalls};
pub use balance::{
    BalanceBuilder, BalanceConfig, RouteCandidates, StickyKey, WeightedBalance,
    WeightedBalanceLayer, WeightedModel,
};
pub use config::Config;
#[cfg(feature = "redis")]
pub use cooldown::RedisStore;
pub use cooldown::{Cooldown, CooldownLayer, CooldownStore, InMemoryStore};
pub use credentials::{Credential, CredentialConfig, Credentials, CredentialsBuilder};
pub use error::{ChatError, ConfigError, ErrorKind, Problem, StreamFault, TimeoutKind};
pub use fallback::{
    FallbackBuilder, FallbackConfig, FallbackGroups, ProviderFallback, ProviderFallbackLayer,
};
pub use future::ChatFuture;
pub use health::{AllCooling, ForceAttempt, Health, HealthView, SingleAttempt};
pub use malformed::MalformedChunks;
pub use model::{split_model_id, validate_model_id, validate_provider_name};
#[cfg(feature = "openai")]
pub use openai::{Azure, OpenAi};
pub use per_model::PerModel;
pub use prepend::{PrependBuilder, PrependMessages, PrependMessagesLayer};
pub use providers::{BoxChatService, Providers, ProvidersBuilder};
pub use request::{
    ChatRequest, Content, ContentPart, Deadline, FunctionCall, ImagePart, ImageUrl, Message, Role,
    TextPart, ToolCall,
};
pub use response::{
    ChatChunk, ChatCompletion, ChatResponse, ChatStream, Choice, ChunkChoice, Delta,
    FunctionCallDelta, ResponseBody, ToolCallDelta, Usage,
};
pub use retry::{Backoff, Jitter, Retry, RetryBudget, RetryLayer, RetryPolicy};
pub use rng::SharedRng;
pub use secret::ApiKey;
pub use select::{SelectModel, SelectModelBuilder, SelectModelLayer};
#[cfg(feature = "server")]
pub use server::{Server, ServerBuilder};
pub use stack::{Stack, StackBuilder};
pub use timeout::{StreamDeadlines, Timeout, TimeoutLayer};
pub use usage::{Limits, RoutingStrategy};

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
