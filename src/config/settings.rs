//! Checking the layer settings of a config: timeouts, retries, cooldown,
//! prepended messages, the server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use super::resolve::{key_path, Ctx};
use super::sections::{BackoffSettings, JitterSetting};
use super::values::{Switch, TimeLimit};
use crate::chat::{Message, PerModel, Problem, Role};
use crate::layers::cooldown::{AdaptiveThrottle, BreakerSettings, FailureRatio, Growth};
use crate::layers::health::AllCooling;
use crate::layers::retry::{Backoff, Jitter, RetryBudget};
use crate::layers::timeout::{StreamDeadlines, DEFAULT_ATTEMPT};
use crate::secret::ApiKey;

/// The retry layer's settings, checked.
#[derive(Debug)]
pub(crate) struct RetryPlan {
    pub(crate) max_retries: PerModel<u32>,
    pub(crate) backoff: PerModel<Backoff>,
    pub(crate) max_retry_after: Duration,
    pub(crate) budget: Option<RetryBudget>,
}

/// The cooldown layer's settings, checked.
#[derive(Debug)]
pub(crate) struct CooldownPlan {
    pub(crate) consecutive_failures: PerModel<u32>,
    pub(crate) cooldown: PerModel<Duration>,
    pub(crate) failure_ratio: Option<FailureRatio>,
    pub(crate) growth: Option<Growth>,
    pub(crate) max_retry_after: Duration,
    pub(crate) all_cooling: AllCooling,
    pub(crate) throttle: Option<AdaptiveThrottle>,
}

/// The server's settings, checked.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) struct ServerPlan {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) body_limit: Option<usize>,
    pub(crate) allow_unlisted: bool,
    pub(crate) shutdown_grace: Option<Duration>,
}

type Routes = BTreeMap<String, Vec<String>>;

/// The deadlines of `[timeout]` other than the stream deadlines.
pub(crate) struct Timeouts {
    pub(crate) total: Option<Duration>,
    pub(crate) attempt: Option<PerModel<Option<Duration>>>,
    pub(crate) complete: PerModel<Option<Duration>>,
}

impl Ctx<'_> {
    fn positive(&mut self, path: &str, d: Duration, hint: &str) {
        if d.is_zero() {
            self.errors
                .push(path, format!("must be more than zero{hint}"));
        }
    }

    /// The total budget, the attempt deadlines of streams (`None` when no
    /// model has one) and those of complete answers, which default to
    /// [`DEFAULT_ATTEMPT`] so that no call waits forever.
    pub(crate) fn timeouts(&mut self, routes: &Routes) -> Timeouts {
        let config = self.config;
        let t = &config.timeout;
        let total = t.total.map(|d| d.get());
        if let Some(total) = total {
            self.positive("timeout.total", total, " (leave it out for no budget)");
        }
        let attempt = self.per_model("timeout.attempt", &t.attempt, TimeLimit::Unlimited, routes);
        let any = self.limits("timeout.attempt", &attempt);
        let attempt = attempt.map(TimeLimit::get);
        let default = match t.attempt.default {
            Some(_) => *attempt.default_value(),
            None => Some(DEFAULT_ATTEMPT),
        };
        let mut complete = PerModel::new(default);
        for (model, limit) in attempt.overrides() {
            complete.set(model, *limit);
        }
        Timeouts {
            total,
            attempt: any.then_some(attempt),
            complete,
        }
    }

    /// The stream deadlines of each model: its own value of each field,
    /// else the field's default, else [`StreamDeadlines::new`]'s.
    pub(crate) fn stream_deadlines(&mut self, routes: &Routes) -> PerModel<StreamDeadlines> {
        let config = self.config;
        let t = &config.timeout;
        let d = StreamDeadlines::new();
        let builtin = |o: Option<Duration>| o.map_or(TimeLimit::Unlimited, TimeLimit::After);
        let fields = [
            ("timeout.headers", &t.headers, d.headers()),
            ("timeout.first_token", &t.first_token, d.first_token()),
            ("timeout.idle", &t.idle, d.idle()),
            ("timeout.stream_total", &t.stream_total, d.total()),
        ];
        let per = fields.map(|(path, setting, default)| {
            let per = self.per_model(path, setting, builtin(default), routes);
            self.limits(path, &per);
            per.map(TimeLimit::get)
        });
        let at = |model: Option<&str>| {
            let get = |p: &PerModel<Option<Duration>>| match model {
                Some(m) => *p.get(m),
                None => *p.default_value(),
            };
            StreamDeadlines::none()
                .with_headers(get(&per[0]))
                .with_first_token(get(&per[1]))
                .with_idle(get(&per[2]))
                .with_total(get(&per[3]))
        };
        let mut deadlines = PerModel::new(at(None));
        let models: BTreeSet<&str> = per
            .iter()
            .flat_map(|p| p.overrides())
            .map(|(m, _)| m)
            .collect();
        for model in models {
            deadlines.set(model, at(Some(model)));
        }
        deadlines
    }

    /// Checks each limit of a per-model time limit; whether any is set.
    fn limits(&mut self, path: &str, limits: &PerModel<TimeLimit>) -> bool {
        let mut any = false;
        let mut check = |ctx: &mut Self, at: String, limit: &TimeLimit| {
            if let TimeLimit::After(d) = limit {
                any = true;
                ctx.positive(&at, *d, " (use \"none\" for no deadline)");
            }
        };
        check(self, path.to_owned(), limits.default_value());
        for (model, limit) in limits.overrides() {
            check(self, format!("{path}.models.{}", key_path(model)), limit);
        }
        any
    }

    pub(crate) fn retry(&mut self, routes: &Routes) -> RetryPlan {
        let config = self.config;
        let r = &config.retry;
        let max_retries = self.per_model("retry.max_retries", &r.max_retries, 2, routes);
        let settings = self.per_model(
            "retry.backoff",
            &r.backoff,
            BackoffSettings::default(),
            routes,
        );
        let base = settings.default_value().clone();
        let (default, reported) =
            self.backoff("retry.backoff", &base, &BackoffSettings::default(), &[]);
        let mut backoff = PerModel::new(default);
        for (model, s) in settings.overrides() {
            let path = format!("retry.backoff.models.{}", key_path(model));
            backoff.set(model, self.backoff(&path, s, &base, &reported).0);
        }
        let max_retry_after = r
            .max_retry_after
            .map_or(Duration::from_secs(10), |d| d.get());
        self.positive("retry.max_retry_after", max_retry_after, "");
        let budget = match &r.budget {
            Switch::Off => None,
            Switch::On(b) => {
                let window = b.window.map_or(Duration::from_secs(10), |d| d.get());
                match RetryBudget::new(
                    window,
                    b.min_per_second.unwrap_or(10),
                    b.ratio.unwrap_or(0.2),
                ) {
                    Ok(budget) => Some(budget),
                    Err(e) => {
                        self.errors.extend(e);
                        None
                    }
                }
            }
        };
        RetryPlan {
            max_retries,
            backoff,
            max_retry_after,
            budget,
        }
    }

    /// `s` over `base`: the fields `s` leaves out are `base`'s. Problems
    /// already in `reported` (those of the default) are not repeated; the
    /// ones found are returned.
    fn backoff(
        &mut self,
        path: &str,
        s: &BackoffSettings,
        base: &BackoffSettings,
        reported: &[Problem],
    ) -> (Backoff, Vec<Problem>) {
        let d = Backoff::default();
        let jitter = match s.jitter.or(base.jitter) {
            None | Some(JitterSetting::Full) => Jitter::Full,
            Some(JitterSetting::Decorrelated) => Jitter::Decorrelated,
            Some(JitterSetting::None) => Jitter::None,
        };
        let built = Backoff::builder()
            .base(s.base.or(base.base).map_or(d.base(), |b| b.get()))
            .factor(s.factor.or(base.factor).unwrap_or(d.factor()))
            .cap(s.cap.or(base.cap).map_or(d.cap(), |c| c.get()))
            .jitter(jitter)
            .build();
        match built {
            Ok(backoff) => (backoff, Vec::new()),
            Err(e) => {
                let found = e.problems().to_vec();
                for p in found.iter().filter(|p| !reported.contains(p)) {
                    // The builder's paths are `backoff.<field>`.
                    let field = p.path.strip_prefix("backoff").unwrap_or(&p.path);
                    self.errors.push(format!("{path}{field}"), &p.message);
                }
                (d, found)
            }
        }
    }

    pub(crate) fn cooldown(&mut self, routes: &Routes) -> Option<CooldownPlan> {
        let config = self.config;
        let c = &config.cooldown;
        let d = BreakerSettings::default();
        let consecutive_failures = self.per_model(
            "cooldown.consecutive_failures",
            &c.consecutive_failures,
            d.consecutive_failures,
            routes,
        );
        let cooldown = self
            .per_model("cooldown.cooldown", &c.cooldown, d.cooldown.into(), routes)
            .map(|h| h.get());
        self.positive("cooldown.cooldown", *cooldown.default_value(), "");
        for (model, value) in cooldown.overrides() {
            let path = format!("cooldown.cooldown.models.{}", key_path(model));
            self.positive(&path, *value, "");
        }
        let failure_ratio = match &c.failure_ratio {
            Switch::Off => None,
            Switch::On(f) => {
                let default = d.failure_ratio.expect("on by default");
                let rule = FailureRatio::new(
                    f.ratio.unwrap_or(default.ratio),
                    f.window.map_or(default.window, |w| w.get()),
                    f.min_calls.unwrap_or(default.min_calls),
                );
                if !(rule.ratio > 0.0 && rule.ratio <= 1.0) {
                    self.errors.push(
                        "cooldown.failure_ratio.ratio",
                        format!("ratio {} is not in (0, 1]", rule.ratio),
                    );
                }
                self.positive("cooldown.failure_ratio.window", rule.window, "");
                if rule.min_calls == 0 {
                    self.errors
                        .push("cooldown.failure_ratio.min_calls", "must be at least 1");
                }
                Some(rule)
            }
        };
        let growth = c.growth.as_ref().map(|g| Growth {
            factor: g.factor,
            max: g.max.get(),
        });
        if let Some(g) = growth {
            if !(g.factor.is_finite() && g.factor >= 1.0) {
                self.errors.push(
                    "cooldown.growth.factor",
                    format!("factor {} must be a finite number of at least 1", g.factor),
                );
            }
            let longest = cooldown
                .overrides()
                .map(|(_, d)| *d)
                .chain([*cooldown.default_value()])
                .max()
                .unwrap_or_default();
            if g.max < longest {
                self.errors.push(
                    "cooldown.growth.max",
                    format!("max {:?} is shorter than the cooldown {longest:?}", g.max),
                );
            }
        }
        let max_retry_after = c
            .max_retry_after
            .map_or(Duration::from_secs(600), |d| d.get());
        self.positive("cooldown.max_retry_after", max_retry_after, "");
        let all_cooling = match c.when_all_cooling.as_deref() {
            None => AllCooling::default(),
            Some(name) => AllCooling::parse(name).unwrap_or_else(|| {
                self.errors.push(
                    "cooldown.when_all_cooling",
                    format!("{name:?} is not \"fail_fast\" or \"try_earliest\""),
                );
                AllCooling::default()
            }),
        };
        let throttle = match &c.adaptive_throttle {
            Switch::Off => None,
            Switch::On(t) => {
                let d = AdaptiveThrottle::default();
                let t = AdaptiveThrottle::new(
                    t.k.unwrap_or(d.k),
                    t.window.map_or(d.window, |w| w.get()),
                )
                .with_min_requests(t.min_requests.unwrap_or(d.min_requests));
                if !(t.k.is_finite() && t.k >= 1.0) {
                    self.errors.push(
                        "cooldown.adaptive_throttle.k",
                        format!("k {} must be a finite number of at least 1", t.k),
                    );
                }
                if t.window < Duration::from_millis(10) {
                    self.errors.push(
                        "cooldown.adaptive_throttle.window",
                        "must be at least 10 ms",
                    );
                }
                Some(t)
            }
        };
        (c.enabled != Some(false)).then_some(CooldownPlan {
            consecutive_failures,
            cooldown,
            failure_ratio,
            growth,
            max_retry_after,
            all_cooling,
            throttle,
        })
    }

    pub(crate) fn messages(&mut self, routes: &Routes) -> PerModel<Vec<Message>> {
        let config = self.config;
        let messages = self.per_model("model_messages", &config.model_messages, Vec::new(), routes);
        let check = |ctx: &mut Self, path: &str, list: &[Message]| {
            for (i, m) in list.iter().enumerate() {
                if !matches!(m.role, Role::System | Role::Developer | Role::User) {
                    ctx.errors.push(
                        format!("{path}[{i}]"),
                        format!(
                            "role {} cannot open a conversation; use system, developer or user",
                            m.role
                        ),
                    );
                }
            }
        };
        check(self, "model_messages", messages.default_value());
        for (model, list) in messages.overrides() {
            check(
                self,
                &format!("model_messages.models.{}", key_path(model)),
                list,
            );
        }
        messages
    }

    pub(crate) fn server(&mut self) -> ServerPlan {
        let config = self.config;
        let s = &config.server;
        let listen = s.listen.as_deref().and_then(|addr| match addr.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.errors.push(
                    "server.listen",
                    format!("{addr:?} is not an address like \"127.0.0.1:8080\""),
                );
                None
            }
        });
        let api_key = s
            .api_key_env
            .as_deref()
            .and_then(|var| self.env_value("server.api_key_env", var))
            .map(ApiKey::new);
        if s.body_limit == Some(0) {
            self.errors
                .push("server.body_limit", "must be at least 1 byte");
        }
        ServerPlan {
            listen,
            api_key,
            body_limit: s.body_limit,
            allow_unlisted: s.allow_unlisted_models,
            shutdown_grace: s.shutdown_grace.map(|d| d.get()),
        }
    }
}
