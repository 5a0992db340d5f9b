//! Prometheus metrics of the server, served on `GET /metrics`: what each chat
//! call did, recorded once when it ends from what the server already has (its
//! outcome, its [`AttemptLog`](crate::chat::AttemptLog), its usage), and each
//! model's breaker, read from the health view at scrape time.
//!
//! The registry belongs to the server (no global recorder): the layers record
//! nothing, so a user of the layers without the server pays nothing.
//! Names follow OpenTelemetry's GenAI semantic conventions where they define
//! one (`gen_ai.client.operation.duration` is
//! `gen_ai_client_operation_duration_seconds`); the rest are
//! `llm_fallback_*`. Model labels only take the values the server's options
//! name (listed models, route aliases and their candidates) or `other`, so
//! a client cannot create series.

mod breakers;
mod generation;
mod labels;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use self::breakers::Breakers;
use self::generation::ConfigGeneration;
use self::labels::{
    Attempted, Call, Ended, Model, Models, Operation, Route, Skip, Status, Tokens, Upstream,
};
use super::live::{Active, Generation};
use crate::chat::{Attempt, SkipReason, Usage};
use crate::layers::health::Health;
use crate::ErrorKind;

/// OpenTelemetry's advised buckets for `gen_ai.client.operation.duration`, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// OpenTelemetry's advised buckets for `gen_ai.server.time_to_first_token`, in seconds.
const TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// OpenTelemetry's advised buckets for `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// What one chat call did, handed over when it ends.
pub(crate) struct Finished<'a> {
    pub(crate) model: &'a str,
    pub(crate) served: &'a str,
    pub(crate) attempts: &'a [Attempt],
    pub(crate) status: u16,
    /// `completed`, `failed` or `cancelled`.
    pub(crate) outcome: &'static str,
    /// The error's kind, when the call failed with one.
    pub(crate) error: Option<ErrorKind>,
    pub(crate) total: Duration,
    pub(crate) first_token: Option<Duration>,
    pub(crate) usage: Option<&'a Usage>,
}

/// What the labels and the scraped gauges come from: the active
/// generation's models and health, swapped on a reload.
#[derive(Debug)]
struct View {
    models: Models,
    /// The `provider/model` ids, sorted: the models with a breaker.
    upstream: Vec<Model>,
    health: Health,
    generation: Generation,
}

impl View {
    fn of(active: &Active) -> Self {
        let models = Models::new(active.named());
        View {
            upstream: models.upstream(),
            models,
            health: active.health.clone(),
            generation: active.generation.clone(),
        }
    }
}

/// The server's registry and its series.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    view: Arc<ArcSwap<View>>,
    requests: Family<Ended, Counter>,
    rejected: Family<Status, Counter>,
    duration: Histograms<Operation>,
    first_token: Histograms<Call>,
    tokens: Histograms<Tokens>,
    attempts: Family<Attempted, Counter>,
    attempt_duration: Histograms<Upstream>,
    skips: Family<Skip, Counter>,
    retries: Family<Upstream, Counter>,
    fallbacks: Family<Route, Counter>,
    recoveries: Family<Upstream, Counter>,
    hedges: Family<Upstream, Counter>,
    hedges_won: Family<Upstream, Counter>,
}

impl Metrics {
    /// The series for a server serving `active`: labels for the models
    /// it names, the breakers of its health view, its generation.
    pub(crate) fn new(active: &Active) -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            view: Arc::new(ArcSwap::from_pointee(View::of(active))),
            requests: Family::default(),
            rejected: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            first_token: Family::new_with_constructor(|| Histogram::new(TTFT_BUCKETS)),
            tokens: Family::new_with_constructor(|| Histogram::new(TOKEN_BUCKETS)),
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            skips: Family::default(),
            retries: Family::default(),
            fallbacks: Family::default(),
            recoveries: Family::default(),
            hedges: Family::default(),
            hedges_won: Family::default(),
        };
        metrics.register();
        metrics.prime();
        metrics
    }

    /// Labels, breakers and generation from `active` from now on; the
    /// counts so far stay (a model removed keeps its series).
    pub(crate) fn relabel(&self, active: &Active) {
        self.view.store(Arc::new(View::of(active)));
        self.prime();
    }

    /// Zeros for every configured model, so rates and alerts see the
    /// first event.
    fn prime(&self) {
        for model in &self.view.load().upstream {
            let labels = Upstream::of(model);
            let _ = self.attempt_duration.get_or_create(&labels);
            let _ = self.retries.get_or_create(&labels);
        }
    }

    /// Registers every series, the breakers and the config generation.
    fn register(&mut self) {
        let registry = &mut self.registry;
        let seconds = Unit::Seconds;
        registry.register_with_unit(
            "gen_ai_client_operation_duration",
            "Duration of chat calls, from the request to the end of the answer",
            seconds.clone(),
            self.duration.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time from the request to the first content sent, for streams",
            seconds.clone(),
            self.first_token.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens per chat call, by type (input or output), as the answer reported them",
            self.tokens.clone(),
        );
        registry.register(
            "llm_fallback_requests",
            "Chat calls that reached the stack, by route, served model, status and outcome",
            self.requests.clone(),
        );
        registry.register(
            "llm_fallback_rejected_requests",
            "Chat calls answered 4xx before the stack (bad body, unknown model, too large)",
            self.rejected.clone(),
        );
        registry.register(
            "llm_fallback_upstream_attempts",
            "Upstream calls, by model and outcome (ok or the error's kind)",
            self.attempts.clone(),
        );
        registry.register_with_unit(
            "llm_fallback_upstream_attempt_duration",
            "Duration of each upstream call, by model",
            seconds,
            self.attempt_duration.clone(),
        );
        registry.register(
            "llm_fallback_skips",
            "Models passed over without a call: cooling (breaker open), limited (rpm/tpm) or shed (adaptive throttle)",
            self.skips.clone(),
        );
        registry.register(
            "llm_fallback_retries",
            "Upstream calls that repeated an earlier call of the same model in one chat call (key rotations not counted)",
            self.retries.clone(),
        );
        registry.register(
            "llm_fallback_fallbacks",
            "Other models called after the first (hedges included, as in x-llm-fallback-fallbacks), by the route asked for",
            self.fallbacks.clone(),
        );
        registry.register(
            "llm_fallback_recoveries",
            "Streams cut mid-answer and finished by another model, by the model that was cut",
            self.recoveries.clone(),
        );
        registry.register(
            "llm_fallback_hedges",
            "Models called as a hedge (racing a candidate that had not answered within the hedge delay)",
            self.hedges.clone(),
        );
        registry.register(
            "llm_fallback_hedges_won",
            "Calls served by a hedge, by the model that served",
            self.hedges_won.clone(),
        );
        registry.register_collector(Box::new(Breakers::new(self.view.clone())));
        registry.register_collector(Box::new(ConfigGeneration::new(self.view.clone())));
    }

    /// Records a call that reached the stack.
    pub(crate) fn record(&self, call: &Finished<'_>) {
        let view = self.view.load();
        let route = view.models.get(call.model);
        let served = view.models.get(call.served);
        let labels = || Call {
            gen_ai_request_model: route.id.clone(),
            gen_ai_response_model: served.id.clone(),
            gen_ai_provider_name: served.provider.clone(),
        };
        let outcome = call.outcome;
        // A call the client gave up on ended in an error of its own.
        let error = match (outcome, call.error) {
            ("cancelled", None) => ErrorKind::Cancelled.as_str(),
            (_, kind) => kind.map_or("", ErrorKind::as_str),
        };
        // Most calls: their series are kept, not looked up.
        let kept = (call.status == 200 && outcome == "completed" && error.is_empty())
            .then(|| route.handles.completed(served));
        let kept = kept.as_deref();
        series(kept.map(|k| &k.requests), || {
            Counter::clone(&self.requests.get_or_create(&Ended {
                call: labels(),
                http_response_status_code: call.status,
                outcome,
                error_type: error,
            }))
        })
        .inc();
        series(kept.map(|k| &k.duration), || {
            Histogram::clone(&self.duration.get_or_create(&Operation {
                gen_ai_operation_name: "chat",
                call: labels(),
                error_type: error,
            }))
        })
        .observe(call.total.as_secs_f64());
        if let Some(usage) = call.usage {
            for (kind, n, slot) in [
                ("input", usage.prompt_tokens, kept.map(|k| &k.input_tokens)),
                (
                    "output",
                    usage.completion_tokens,
                    kept.map(|k| &k.output_tokens),
                ),
            ] {
                series(slot, || {
                    Histogram::clone(&self.tokens.get_or_create(&Tokens {
                        gen_ai_operation_name: "chat",
                        call: labels(),
                        gen_ai_token_type: kind,
                    }))
                })
                .observe(n as f64);
            }
        }
        if let Some(first) = call.first_token {
            series(kept.map(|k| &k.first_token), || {
                Histogram::clone(&self.first_token.get_or_create(&labels()))
            })
            .observe(first.as_secs_f64());
        }
        self.record_attempts(call.attempts, &view.models, route);
    }

    fn record_attempts(&self, attempts: &[Attempt], models: &Models, route: &Model) {
        let winner = attempts.iter().rev().find(|a| a.is_success());
        let finished = winner.is_some();
        if let Some(winner) = winner.filter(|a| a.hedge) {
            let model = Upstream::of(models.get(&winner.model));
            self.hedges_won.get_or_create(&model).inc();
        }
        // Distinct models called; counted by looking back (a log holds a
        // handful of attempts), so recording allocates nothing.
        let mut models_called = 0u64;
        for (i, a) in attempts.iter().enumerate() {
            let of = models.get(&a.model);
            let model = || Upstream::of(of);
            if !a.upstream {
                let reason = a.skip.unwrap_or(SkipReason::Cooling).as_str();
                let model = model();
                self.skips.get_or_create(&Skip { model, reason }).inc();
                continue;
            }
            let outcome = a.error.map_or("ok", ErrorKind::as_str);
            series(Some(&of.handles.attempt_duration), || {
                Histogram::clone(&self.attempt_duration.get_or_create(&model()))
            })
            .observe(a.latency.as_secs_f64());
            if finished && a.error == Some(ErrorKind::StreamInterrupted) {
                self.recoveries.get_or_create(&model()).inc();
            }
            let before = attempts[..i]
                .iter()
                .rev()
                .find(|b| b.upstream && b.model == a.model);
            match before {
                // A call after its model's key moved on is the same try.
                Some(before) if before.rotated => {}
                Some(_) => {
                    self.retries.get_or_create(&model()).inc();
                }
                None => {
                    models_called += 1;
                    // A hedge's retries are the same hedge.
                    if a.hedge {
                        self.hedges.get_or_create(&model()).inc();
                    }
                }
            }
            let ok = (outcome == "ok").then_some(&of.handles.attempts_ok);
            series(ok, || {
                let model = model();
                Counter::clone(&self.attempts.get_or_create(&Attempted { model, outcome }))
            })
            .inc();
        }
        if models_called > 1 {
            self.fallbacks
                .get_or_create(&Route {
                    gen_ai_request_model: route.id.clone(),
                })
                .inc_by(models_called - 1);
        }
    }

    /// Records a call answered with `status` before the stack saw it.
    pub(crate) fn rejected(&self, status: StatusCode) {
        self.rejected
            .get_or_create(&Status {
                http_response_status_code: status.as_u16(),
            })
            .inc();
    }

    /// The series in Prometheus' text format (version 0.0.4).
    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The series `find` finds, kept in `slot` (when there is one) and found
/// only the first time.
fn series<M: Clone>(slot: Option<&OnceLock<M>>, find: impl FnOnce() -> M) -> M {
    match slot {
        Some(slot) => slot.get_or_init(find).clone(),
        None => find(),
    }
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => (
            [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
