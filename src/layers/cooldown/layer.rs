use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::policy::{BreakerSettings, Classifier, FailureRatio, Growth, KindSets, Verdict};
use super::store::CooldownStore;
use super::throttle::{AdaptiveThrottle, Throttles};
use super::{Cooldown, InMemoryStore, Shared};
use crate::chat::{validate_model_id, ChatError, ConfigError, ErrorKind, PerModel};
use crate::layers::health::{AllCooling, Health};
use crate::rng::SharedRng;

/// Applies [`Cooldown`] to a service. Every service it wraps (and every
/// clone) shares one [`CooldownStore`], and [`health`](Self::health) reads it.
#[derive(Clone)]
pub struct CooldownLayer {
    shared: Arc<Shared>,
}

impl CooldownLayer {
    /// The defaults of [`CooldownBuilder`], in memory.
    pub fn new() -> Self {
        CooldownBuilder::default()
            .build()
            .expect("the default cooldown settings are valid")
    }

    /// Starts from the defaults.
    pub fn builder() -> CooldownBuilder {
        CooldownBuilder::default()
    }

    /// Which models are cooling down, for balance and fallback layers.
    pub fn health(&self) -> Health {
        self.shared.health()
    }

    /// The store holding the breakers.
    pub fn store(&self) -> &Arc<dyn CooldownStore> {
        &self.shared.store
    }
}

impl Default for CooldownLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for CooldownLayer {
    type Service = Cooldown<S>;

    fn layer(&self, inner: S) -> Cooldown<S> {
        Cooldown {
            inner,
            shared: self.shared.clone(),
        }
    }
}

impl fmt::Debug for CooldownLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CooldownLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

/// Configures a [`CooldownLayer`]. Every setting but the classifier and the
/// store takes one value for all models or a [`PerModel`] map.
///
/// Defaults, short so a recovered provider is back in use quickly (LiteLLM
/// and Polly use a few seconds too):
///
/// | setting | default |
/// |---|---|
/// | [`consecutive_failures`](Self::consecutive_failures) | 5 |
/// | [`failure_ratio`](Self::failure_ratio) | 50 % of at least 20 calls over 30 s |
/// | [`cooldown`](Self::cooldown) | 5 s, the same after a failed probe |
/// | [`max_retry_after`](Self::max_retry_after) | 10 min |
/// | [`when_all_cooling`](Self::when_all_cooling) | [`AllCooling::TryEarliest`]: one forced call, never retried |
/// | [`adaptive_throttle`](Self::adaptive_throttle) | `K = 2` over 30 s ([`AdaptiveThrottle`]) |
/// | what counts | [`default_verdict`](super::default_verdict): the failure-class table |
/// | store | [`InMemoryStore`] |
pub struct CooldownBuilder {
    consecutive_failures: PerModel<u32>,
    failure_ratio: PerModel<Option<FailureRatio>>,
    cooldown: PerModel<Duration>,
    growth: PerModel<Option<Growth>>,
    max_retry_after: Duration,
    classifier: Classifier,
    store: Option<Arc<dyn CooldownStore>>,
    all_cooling: AllCooling,
    throttle: Option<AdaptiveThrottle>,
    rng: Option<SharedRng>,
}

impl Default for CooldownBuilder {
    fn default() -> Self {
        let d = BreakerSettings::default();
        CooldownBuilder {
            consecutive_failures: PerModel::new(d.consecutive_failures),
            failure_ratio: PerModel::new(d.failure_ratio),
            cooldown: PerModel::new(d.cooldown),
            growth: PerModel::new(d.growth),
            max_retry_after: Duration::from_secs(600),
            classifier: Classifier::Default,
            store: None,
            all_cooling: AllCooling::default(),
            throttle: Some(AdaptiveThrottle::default()),
            rng: None,
        }
    }
}

impl CooldownBuilder {
    /// Trips after this many consecutive counting failures; 0 turns the rule off.
    pub fn consecutive_failures(mut self, n: impl Into<PerModel<u32>>) -> Self {
        self.consecutive_failures = n.into();
        self
    }

    /// Trips when at least `ratio` of at least `min_calls` calls in the last
    /// `window` failed, for every model.
    pub fn failure_ratio(mut self, ratio: f64, window: Duration, min_calls: u32) -> Self {
        self.failure_ratio = PerModel::new(Some(FailureRatio::new(ratio, window, min_calls)));
        self
    }

    /// The failure-ratio rule per model (`None`: no ratio rule for that model).
    pub fn failure_ratio_per_model(mut self, rules: PerModel<Option<FailureRatio>>) -> Self {
        self.failure_ratio = rules;
        self
    }

    /// Trips on consecutive failures only.
    pub fn without_failure_ratio(mut self) -> Self {
        self.failure_ratio = PerModel::new(None);
        self
    }

    /// How long a tripped breaker stays open before one probe is let through.
    pub fn cooldown(mut self, cooldown: impl Into<PerModel<Duration>>) -> Self {
        self.cooldown = cooldown.into();
        self
    }

    /// Multiplies the cooldown by `factor` after each failed probe, up to
    /// `max`, for every model. A probe success resets it.
    pub fn growing_by(mut self, factor: f64, max: Duration) -> Self {
        self.growth = PerModel::new(Some(Growth { factor, max }));
        self
    }

    /// The cooldown growth per model (`None`: constant for that model).
    pub fn growth_per_model(mut self, growth: PerModel<Option<Growth>>) -> Self {
        self.growth = growth;
        self
    }

    /// The longest a provider's `Retry-After` keeps a breaker open.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The kinds that count toward tripping, replacing the table's.
    pub fn counting(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        let mut sets = self.kind_sets();
        sets.counting = KindSets::of(kinds);
        self.classifier = Classifier::Kinds(sets);
        self
    }

    /// The kinds that trip at once (for their `Retry-After` when given),
    /// replacing the table's (not found).
    pub fn tripping_at_once(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        let mut sets = self.kind_sets();
        sets.at_once = KindSets::of(kinds);
        self.classifier = Classifier::Kinds(sets);
        self
    }

    /// Judges every error with `classify` instead of by kind (see
    /// [`default_verdict`](super::default_verdict) to fall back on).
    pub fn classify_with(
        mut self,
        classify: impl Fn(&ChatError) -> Verdict + Send + Sync + 'static,
    ) -> Self {
        self.classifier = Classifier::Custom(Arc::new(classify));
        self
    }

    /// What a call does when its model is cooling down and no routing layer
    /// above decides for it (default [`AllCooling::TryEarliest`]). The
    /// [`health`](CooldownLayer::health) view carries it to the routing
    /// layers, so routes and models requested directly behave alike.
    pub fn when_all_cooling(mut self, policy: AllCooling) -> Self {
        self.all_cooling = policy;
        self
    }

    /// The adaptive throttle's settings (default [`AdaptiveThrottle::default`]).
    pub fn adaptive_throttle(mut self, throttle: AdaptiveThrottle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// No adaptive throttle: calls to a closed breaker always go upstream.
    pub fn without_adaptive_throttle(mut self) -> Self {
        self.throttle = None;
        self
    }

    /// The random source of the throttle's draws (default: seeded from the OS).
    pub fn rng(mut self, rng: SharedRng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Keeps breaker state in `store` (which other layers may share)
    /// instead of a new [`InMemoryStore`].
    pub fn store(mut self, store: Arc<dyn CooldownStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The settings of `model`, or the default ones.
    fn resolve(&self, model: Option<&str>) -> BreakerSettings {
        fn pick<T: Copy>(per: &PerModel<T>, model: Option<&str>) -> T {
            match model {
                Some(model) => *per.get(model),
                None => *per.default_value(),
            }
        }
        BreakerSettings {
            consecutive_failures: pick(&self.consecutive_failures, model),
            failure_ratio: pick(&self.failure_ratio, model),
            cooldown: pick(&self.cooldown, model),
            growth: pick(&self.growth, model),
        }
    }

    fn kind_sets(&self) -> KindSets {
        match &self.classifier {
            Classifier::Kinds(sets) => *sets,
            _ => KindSets::table(),
        }
    }

    /// The layer, or every invalid setting, each named.
    pub fn build(self) -> Result<CooldownLayer, ConfigError> {
        let mut errors = ConfigError::default();
        let mut models = BTreeSet::new();
        models.extend(self.consecutive_failures.overrides().map(|(m, _)| m));
        models.extend(self.failure_ratio.overrides().map(|(m, _)| m));
        models.extend(self.cooldown.overrides().map(|(m, _)| m));
        models.extend(self.growth.overrides().map(|(m, _)| m));

        let base = self.resolve(None);
        check(&mut errors, "cooldown", &base, None);
        let mut settings = PerModel::new(base);
        for model in models {
            let path = format!("cooldown.{model}");
            if let Err(e) = validate_model_id(model) {
                errors.push(path, e);
                continue;
            }
            let resolved = self.resolve(Some(model));
            check(&mut errors, &path, &resolved, Some(&base));
            settings.set(model, resolved);
        }
        if self.max_retry_after.is_zero() {
            errors.push("cooldown.max_retry_after", "must be more than zero");
        }
        if let Some(t) = &self.throttle {
            if !(t.k.is_finite() && t.k >= 1.0) {
                errors.push(
                    "cooldown.adaptive_throttle.k",
                    format!("k {} must be a finite number of at least 1", t.k),
                );
            }
            if t.window < Duration::from_millis(10) {
                errors.push(
                    "cooldown.adaptive_throttle.window",
                    "must be at least 10 ms",
                );
            }
        }
        let rng = self.rng.unwrap_or_default();
        let shared = Shared {
            store: self.store.unwrap_or_else(|| Arc::new(InMemoryStore::new())),
            settings,
            classifier: self.classifier,
            max_retry_after: self.max_retry_after,
            all_cooling: self.all_cooling,
            throttles: self.throttle.map(|t| Throttles::new(t, rng)),
            transitions: Default::default(),
        };
        errors.into_result(CooldownLayer {
            shared: Arc::new(shared),
        })
    }
}

/// Reports the invalid values of `s` under `path`; values equal to `base`'s
/// were reported with it already.
fn check(
    errors: &mut ConfigError,
    path: &str,
    s: &BreakerSettings,
    base: Option<&BreakerSettings>,
) {
    if let Some(rule) = s
        .failure_ratio
        .filter(|_| base.is_none_or(|b| b.failure_ratio != s.failure_ratio))
    {
        let path = format!("{path}.failure_ratio");
        if !(rule.ratio > 0.0 && rule.ratio <= 1.0) {
            errors.push(&path, format!("ratio {} is not in (0, 1]", rule.ratio));
        }
        if rule.window.is_zero() {
            errors.push(&path, "the window must be longer than zero");
        }
        if rule.min_calls == 0 {
            errors.push(&path, "min_calls must be at least 1");
        }
    }
    if s.cooldown.is_zero() && base.is_none_or(|b| b.cooldown != s.cooldown) {
        errors.push(format!("{path}.cooldown"), "must be longer than zero");
    }
    let growth_changed = base.is_none_or(|b| b.growth != s.growth || b.cooldown != s.cooldown);
    if let Some(growth) = s.growth.filter(|_| growth_changed) {
        let path = format!("{path}.growth");
        if !(growth.factor.is_finite() && growth.factor >= 1.0) {
            errors.push(
                &path,
                format!(
                    "factor {} must be a finite number of at least 1",
                    growth.factor
                ),
            );
        }
        if growth.max < s.cooldown {
            errors.push(
                &path,
                format!(
                    "max {:?} is shorter than the cooldown {:?}",
                    growth.max, s.cooldown
                ),
            );
        }
    }
}

impl fmt::Debug for CooldownBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CooldownBuilder")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_ratio", &self.failure_ratio)
            .field("cooldown", &self.cooldown)
            .field("growth", &self.growth)
            .field("max_retry_after", &self.max_retry_after)
            .field("classifier", &self.classifier)
            .field("all_cooling", &self.all_cooling)
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}
