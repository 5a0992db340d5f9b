//! [`RouteOptions`]: what the two routing layers share, set once for either.

use std::collections::BTreeMap;

use super::{parse_kind, RoutePolicy};
use crate::chat::{validate_model_id, ConfigError, ErrorKind, PerModel};
use crate::layers::health::Health;
use crate::layers::hedge::Hedge;
use crate::settings::key_path;

/// The options of the two routing layers
/// ([`FallbackBuilder::options`](crate::FallbackBuilder::options),
/// [`BalanceBuilder::options`](crate::BalanceBuilder::options)): which
/// failures move a call on to the next candidate, how many candidates and
/// upstream calls it may use, and mid-stream recovery. Mistakes are
/// reported by the builder's `build`, with the others.
///
/// Defaults: move on after the kinds of [`ErrorKind::is_fallbackable`], no
/// bound on fallbacks, at most
/// [`MaxUpstreamCalls::DEFAULT`](crate::chat::MaxUpstreamCalls::DEFAULT) (4)
/// upstream calls per call, no mid-stream recovery, no model continuing a
/// partial answer.
///
/// ```
/// use llm_fallback::{ErrorKind, ProviderFallbackLayer, RouteOptions};
///
/// let layer = ProviderFallbackLayer::builder()
///     .group(["azure/gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])
///     .options(
///         RouteOptions::new()
///             .fallback_on(ErrorKind::BadRequest, true)
///             .max_fallbacks(2)
///             .recover_streams(true)
///             .prefill_supported("anthropic/claude-3-5-haiku-latest"),
///     )
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Default)]
pub struct RouteOptions {
    policy: RoutePolicy,
    recover_all: bool,
    recover_for: Vec<(String, bool)>,
    errors: ConfigError,
}

impl RouteOptions {
    /// The defaults.
    pub fn new() -> Self {
        RouteOptions::default()
    }

    /// Whether a failure of `kind` moves on to the next candidate (default:
    /// [`ErrorKind::is_fallbackable`]).
    pub fn fallback_on(mut self, kind: ErrorKind, on: bool) -> Self {
        self.policy.set_fallback_on(kind, on);
        self
    }

    /// [`fallback_on`](Self::fallback_on) for kinds given by name
    /// (`bad_request`), as config files give them; an unknown name goes to
    /// `errors` under `<prefix>fallback_on.<name>`.
    pub(crate) fn fallback_on_names(
        mut self,
        kinds: &BTreeMap<String, bool>,
        prefix: &str,
        errors: &mut ConfigError,
    ) -> Self {
        for (name, on) in kinds {
            match parse_kind(name) {
                Ok(kind) => self = self.fallback_on(kind, *on),
                Err(e) => errors.push(format!("{prefix}fallback_on.{}", key_path(name)), e),
            }
        }
        self
    }

    /// Calls at most `n` candidates after the first failed one; candidates
    /// skipped while cooling down do not count. Default: no bound.
    pub fn max_fallbacks(mut self, n: usize) -> Self {
        self.policy.max_fallbacks = Some(n);
        self
    }

    /// Caps the upstream calls of one call, retries and fallbacks together
    /// (default [`MaxUpstreamCalls::DEFAULT`](crate::chat::MaxUpstreamCalls::DEFAULT),
    /// 4; skips do not count). A request carrying its own
    /// [`MaxUpstreamCalls`](crate::chat::MaxUpstreamCalls) keeps it. At least 1.
    pub fn max_upstream_calls(mut self, n: usize) -> Self {
        self.policy.max_upstream_calls = Some(n);
        self
    }

    /// No cap on upstream calls: only the retry and fallback bounds apply.
    pub fn no_upstream_call_cap(mut self) -> Self {
        self.policy.max_upstream_calls = None;
        self
    }

    /// Hedges calls (default: off): a candidate that has not answered (its
    /// first content chunk, for a stream) within the hedge's delay races
    /// the next candidate of the same route, and the first to answer
    /// serves. See [`layers::hedge`](crate::layers::hedge).
    pub fn hedge(mut self, hedge: Hedge) -> Self {
        self.policy.set_hedge(hedge);
        self
    }

    /// Mid-stream recovery for every request (default: off): when a stream
    /// that has started (past its first token) is cut, stalls, sends an
    /// event that cannot be read, or an in-band error of a kind that falls
    /// back (not a content filter or a bad request), the answer is finished
    /// on the next candidate (of the request's group, or of the weighted
    /// route) instead of failing.
    ///
    /// - A model declared with [`prefill_supported`](Self::prefill_supported)
    ///   gets the conversation plus the partial answer as a final assistant
    ///   message, and only its continuation is streamed.
    /// - Any other model answers from the beginning; its answer is spliced
    ///   on only if it begins with exactly the text already delivered (that
    ///   part is swallowed), else the next candidate is tried.
    /// - If no candidate finishes the answer, the caller's stream ends with
    ///   the original fault (the cut, stall or break of the model that served),
    ///   never a recovery attempt's own error (such as a 400 rejecting the
    ///   prefill); the attempt log lists them all.
    ///
    /// Streams with tool calls, refusals or several choices are never
    /// spliced. Every chunk keeps the `id`, `created`, `system_fingerprint`
    /// and `model` (the full id of the model that served first) the caller
    /// saw first, so the stream stays one consistent answer; the attempt log
    /// says which model finished it. The usage in the last chunk sums every
    /// stream that reported one. Stalls are detected
    /// by an inner [`Timeout`](crate::Timeout) layer with an idle deadline
    /// ([`StreamDeadlines`](crate::layers::timeout::StreamDeadlines)).
    pub fn recover_streams(mut self, on: bool) -> Self {
        self.recover_all = on;
        self
    }

    /// Mid-stream recovery for requests naming `id` (for the fallback layer
    /// a model of a group or a group name, for the balance layer an alias or
    /// a candidate); takes precedence over
    /// [`recover_streams`](Self::recover_streams). An `id` the layer does
    /// not route is reported by its `build`.
    pub fn recover_streams_for(mut self, id: impl Into<String>, on: bool) -> Self {
        self.recover_for.push((id.into(), on));
        self
    }

    /// Declares that `model` supports assistant prefill: given a
    /// conversation ending with a partial assistant message, it continues
    /// that message. Mid-stream recovery then sends it the partial answer.
    pub fn prefill_supported(mut self, model: impl Into<String>) -> Self {
        let model = model.into();
        if let Err(e) = validate_model_id(&model) {
            self.errors.push(format!("prefill_supported.{model}"), e);
        }
        self.policy.recovery.prefill.insert(model);
        self
    }

    /// The engine's policy, skipping cooling models by `health`, and the
    /// ids of `recover_streams_for`, for [`check_recovered`]. The problems
    /// found so far go to `errors`.
    pub(crate) fn policy(
        self,
        health: Health,
        errors: &mut ConfigError,
    ) -> (RoutePolicy, Vec<String>) {
        errors.extend(self.errors);
        let mut policy = self.policy;
        if policy.max_upstream_calls == Some(0) {
            errors.push("max_upstream_calls", "must be at least 1");
        }
        policy.health = health;
        policy.recovery.enabled = PerModel::new(self.recover_all);
        let mut ids = Vec::new();
        for (id, on) in self.recover_for {
            ids.push(id.clone());
            policy.recovery.enabled.set(id, on);
        }
        (policy, ids)
    }
}

/// Reports each of `ids` (of `recover_streams_for`) that the layer does not
/// route (`routes` says), as `recover_streams_for.<id>: "<id>" is <what>`.
pub(crate) fn check_recovered(
    ids: &[String],
    routes: impl Fn(&str) -> bool,
    what: &str,
    errors: &mut ConfigError,
) {
    for id in ids.iter().filter(|id| !routes(id)) {
        errors.push(
            format!("recover_streams_for.{id}"),
            format!("{id:?} is {what}"),
        );
    }
}
