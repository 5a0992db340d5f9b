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
//! skipped; see [`chat::MalformedChunks`] and the limits in [`chat::streaming`].
//!
//! The crate root holds what you name when stacking layers, building from a
//! config or serving. The rest lives in its module: [`chat`] (the request,
//! response, error and attempt types), [`layers`] (one module per layer, each
//! with its builder and its config section), [`providers`] (the clients and
//! key rotation), [`store`] (state shared over Redis), [`config`] and
//! [`stack`] (the gateway's config file and the stack built from it),
//! `server` (the OpenAI-compatible HTTP front) and `mock` (scripted providers
//! for tests). `docs/ARCHITECTURE.md` in the repository maps the source.
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

pub use chat::{ChatError, ChatRequest, ChatResponse, ConfigError, ErrorKind, Message};
pub use config::Config;
pub use layers::balance::{BalanceBuilder, WeightedBalance, WeightedBalanceLayer};
pub use layers::cooldown::{Cooldown, CooldownBuilder, CooldownLayer};
pub use layers::fallback::{FallbackBuilder, ProviderFallback, ProviderFallbackLayer};
pub use layers::limit::{Limit, LimitBuilder, LimitLayer};
pub use layers::prepend::{PrependBuilder, PrependMessages, PrependMessagesLayer};
pub use layers::retry::{Retry, RetryBuilder, RetryLayer};
pub use layers::route::RouteOptions;
pub use layers::select::{SelectModel, SelectModelBuilder, SelectModelLayer};
pub use layers::timeout::{Timeout, TimeoutLayer};
#[cfg(feature = "anthropic")]
pub use providers::anthropic::Anthropic;
#[cfg(feature = "openai")]
pub use providers::openai::{Azure, OpenAi};
pub use providers::{BoxChatService, Providers};
pub use rng::SharedRng;
pub use secret::ApiKey;
#[cfg(feature = "server")]
pub use server::Server;
pub use stack::Stack;

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
