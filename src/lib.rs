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
//! skipped; see [`MalformedChunks`] and the limits in [`chat::streaming`].
//!
//! [tower]: https://docs.rs/tower

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

mod clamp;
mod rng;
mod secret;

pub mod chat;
pub mod layers;
pub mod providers;

pub mod config;
pub mod settings;
pub mod stack;
pub mod store;

#[cfg(feature = "mock")]
pub mod mock;
#[cfg(feature = "server")]
pub mod server;

pub use chat::{
    split_model_id, validate_model_id, validate_provider_name, Attempt, AttemptLog, AttemptSummary,
    ChatChunk, ChatCompletion, ChatError, ChatFuture, ChatRequest, ChatResponse, ChatStream,
    Choice, ChunkChoice, ConfigError, Content, ContentPart, Deadline, Delta, ErrorKind,
    FunctionCall, FunctionCallDelta, ImagePart, ImageUrl, LogScope, MalformedChunks,
    MaxUpstreamCalls, Message, PerModel, Problem, ResponseBody, Role, StreamFault, TextPart,
    TimeoutKind, ToolCall, ToolCallDelta, Usage,
};
pub use config::Config;
pub use layers::balance::{
    BalanceBuilder, BalanceConfig, RouteCandidates, RoutingStrategy, StickyKey, WeightedBalance,
    WeightedBalanceLayer, WeightedModel,
};
#[cfg(feature = "redis")]
pub use layers::cooldown::RedisStore;
pub use layers::cooldown::{Cooldown, CooldownLayer, CooldownStore, InMemoryStore};
pub use layers::fallback::{
    FallbackBuilder, FallbackConfig, FallbackGroups, ProviderFallback, ProviderFallbackLayer,
};
pub use layers::health::{AllCooling, ForceAttempt, Health, HealthView, SingleAttempt};
pub use layers::limit::{Limit, LimitLayer, Limits};
pub use layers::prepend::{PrependBuilder, PrependMessages, PrependMessagesLayer};
pub use layers::retry::{Backoff, Jitter, Retry, RetryBudget, RetryLayer, RetryPolicy};
pub use layers::route::RouteOptions;
pub use layers::select::{SelectModel, SelectModelBuilder, SelectModelLayer};
pub use layers::timeout::{StreamDeadlines, Timeout, TimeoutLayer};
#[cfg(feature = "anthropic")]
pub use providers::anthropic::Anthropic;
pub use providers::credentials::{Credential, CredentialConfig, Credentials, CredentialsBuilder};
#[cfg(feature = "openai")]
pub use providers::openai::{Azure, OpenAi};
pub use providers::{BoxChatService, Providers, ProvidersBuilder};
pub use rng::SharedRng;
pub use secret::ApiKey;
#[cfg(feature = "server")]
pub use server::{Server, ServerBuilder};
pub use stack::{Stack, StackBuilder};

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
