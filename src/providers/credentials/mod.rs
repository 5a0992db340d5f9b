//! Several keys for one provider: a request moves to the next key when one is rate-limited, out of quota or revoked.
//!
//! [`Credentials`] holds one client per key (the same client built with
//! different [`ApiKey`](crate::ApiKey)s), each with a label, a tier and a
//! weight, and sits where a single client would: under
//! [`Providers`](crate::Providers). For each request it tries the keys of
//! the lowest tier that has keys available, spread by weight (or in turn),
//! then the next tier:
//!
//! - A key that fails on its own account (by default `RateLimited`: 429,
//!   `insufficient_quota`; and `Auth`: 401, 403) is cooled down alone, for
//!   the provider's `Retry-After` or a rest per kind (see
//!   [`CredentialsBuilder`]), and **the same request** moves to the next key.
//! - Any other outcome is the request's: a success, or a failure that is not
//!   the key's (a 500, a timeout, a bad request) is returned as it is, for
//!   `Retry` and `ProviderFallback` to handle.
//! - When every key has failed or is cooling, the last key's error is
//!   returned with its kind (`RateLimited`, `Auth`), so `ProviderFallback`
//!   moves to the next provider; a rate limit's `retry_after()` becomes the
//!   time until the first key is back. If no key could be tried at all, the
//!   error is `CoolingDown` (a request carrying
//!   [`ForceAttempt`](crate::layers::health::ForceAttempt) calls the key back first instead).
//!
//! Keys and retries are separate budgets: all the key tries of a request
//! happen inside one call of this service, so inside one attempt of the
//! `Retry` layer above it (and within one per-attempt `Timeout`). Each
//! request walks its own order of keys: no key list is shared or swapped
//! between requests; only the keys' breakers are shared, in a
//! [`CooldownStore`] under the ids `provider#label`
//! (share a Redis store and every replica skips a key that one found
//! rate-limited).
//!
//! Each key try is one entry of the [attempt log](crate::chat::Attempt), whose
//! `key` names the key's label; layers above do not log it again. Keys
//! themselves never appear in logs, errors, `Debug` output or the attempt
//! log: only labels do. Keys can come from the environment through a config
//! ([`CredentialConfig`]). Build the clients with one shared
//! `reqwest::Client` (their `http_client` setting) so the keys share a
//! connection pool.
//!
//! # Example
//!
//! ```
//! use llm_fallback::providers::credentials::{Credentials, Key};
//! use llm_fallback::mock::{MockServer, ServerReply};
//! use llm_fallback::providers::openai::OpenAi;
//! use llm_fallback::{ChatRequest, Message, Providers};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = MockServer::start().await;
//! server.always_for_key("gpt-4o", "sk-a", ServerReply::error(429, "rate_limit_exceeded", "slow down"));
//! let client = |key: &str| OpenAi::builder().base_url(server.base_url()).api_key(key).build().unwrap();
//!
//! let openai = Credentials::builder("openai")
//!     .key(Key::new("a", client("sk-a")))
//!     .key(Key::new("b", client("sk-b")))
//!     .round_robin()
//!     .build()
//!     .unwrap();
//! let providers = Providers::builder().provider("openai", openai.clone()).build().unwrap();
//!
//! let request = ChatRequest::new("openai/gpt-4o", [Message::user("hi")]);
//! let response = providers.oneshot(request).await.unwrap();
//! let keys: Vec<_> = response.attempts().iter().map(|a| a.key.as_deref()).collect();
//! assert_eq!(keys, [Some("a"), Some("b")]);
//! assert!(!openai.is_available("a"));
//! # }
//! ```

mod builder;
mod config;
mod plan;
mod policy;
mod rotate;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_service::Service;

use self::plan::{KeyMeta, Pick, Plan};
use self::policy::RotationPolicy;
use crate::chat::{ChatError, ChatFuture, ChatRequest, ChatResponse};
use crate::layers::cooldown::CooldownStore;

pub use self::builder::{CredentialsBuilder, Key};
pub use self::config::{Credential, CredentialConfig};
pub use self::policy::{
    AUTH_COOLDOWN, MAX_RETRY_AFTER, OTHER_COOLDOWN, QUOTA_COOLDOWN, RATE_LIMIT_COOLDOWN,
};

/// One provider's keys, each with its own client. See the [module docs](self).
///
/// Cloning is cheap (one `Arc`); clones share the keys' breakers and the
/// round-robin turn, never a request's rotation.
pub struct Credentials<S> {
    shared: Arc<Shared<S>>,
}

/// What every clone shares; immutable but for the store and the turn.
struct Shared<S> {
    provider: String,
    /// Sorted by tier, declared order within a tier.
    meta: Vec<KeyMeta>,
    services: Vec<S>,
    tiers: Vec<Range<usize>>,
    pick: Pick,
    policy: RotationPolicy,
    store: Arc<dyn CooldownStore>,
}

impl<S> Shared<S> {
    fn plan(&self, now: Instant) -> Plan {
        plan::plan(
            &self.meta,
            &self.tiers,
            &self.pick,
            self.store.as_ref(),
            now,
        )
    }
}

impl<S> Credentials<S> {
    /// Starts configuring the keys of `provider` (the name it is registered
    /// under in [`Providers`](crate::Providers): attempts are logged as
    /// `provider/model`, breakers kept as `provider#label`).
    pub fn builder(provider: impl Into<String>) -> CredentialsBuilder<S> {
        CredentialsBuilder::new(provider.into())
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.shared.provider
    }

    /// The keys' labels, by tier then in the order added.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.shared.meta.iter().map(|k| k.label.as_str())
    }

    /// The client of the key labelled `label`.
    pub fn get_ref(&self, label: &str) -> Option<&S> {
        let i = self.shared.meta.iter().position(|k| k.label == label)?;
        Some(&self.shared.services[i])
    }

    /// When the key labelled `label` may be tried again, if it is cooling down.
    pub fn cooling_until(&self, label: &str) -> Option<Instant> {
        let key = self.shared.meta.iter().find(|k| k.label == label)?;
        self.shared.store.cooling_until(&key.id)
    }

    /// Whether the key labelled `label` may be tried now.
    pub fn is_available(&self, label: &str) -> bool {
        self.cooling_until(label)
            .is_none_or(|until| until <= Instant::now())
    }
}

impl<S> Clone for Credentials<S> {
    fn clone(&self) -> Self {
        Credentials {
            shared: self.shared.clone(),
        }
    }
}

impl<S> fmt::Debug for Credentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<_> = (self.shared.meta.iter())
            .map(|k| format!("{} (tier {}, weight {})", k.label, k.tier, k.weight))
            .collect();
        f.debug_struct("Credentials")
            .field("provider", &self.shared.provider)
            .field("keys", &keys)
            .field("pick", &self.shared.pick)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl<S> Service<ChatRequest> for Credentials<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = ChatError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = ChatResponse;
    type Error = ChatError;
    type Future = ChatFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ChatError>> {
        // The key is chosen per request; each try drives its client's
        // readiness through `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> ChatFuture {
        ChatFuture::new(rotate::rotate(self.shared.clone(), request))
    }
}
