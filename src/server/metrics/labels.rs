//! The label values of the series: models come from the server's options
//! (listed ids, route aliases, route candidates), everything else from a
//! closed set, so no client can create a series.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::chat::split_model_id;

/// The label of a model no option names (a client's typo, an unlisted model
/// passed through): one series for all of them.
pub(super) const OTHER: &str = "other";

/// A model's label values: its id and its provider (empty for a route alias).
#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) id: Arc<str>,
    pub(super) provider: Arc<str>,
    /// Its series, once found (see [`Handles`]).
    pub(super) handles: Arc<Handles>,
}

/// The series a model's calls and attempts most often record into, found
/// in their families once and kept: finding a series hashes its label set
/// (SipHash over every label), and recording a call hashed four to six of
/// them, 5 % of a served call's instructions under callgrind. A handle is
/// the series itself (prometheus-client's metrics share their value), and
/// no family ever removes a series, so a kept handle is never stale. Each
/// is found when first recorded into, so no series appears earlier than
/// it did. A view (and its models) is made again on a reload.
#[derive(Debug, Default)]
pub(super) struct Handles {
    /// This model as an upstream: its attempts' duration, and its
    /// attempts that succeeded.
    pub(super) attempt_duration: OnceLock<Histogram>,
    pub(super) attempts_ok: OnceLock<Counter>,
    /// Calls asked of this model (or route) that completed with a 200,
    /// by the model that served them.
    completed: RwLock<Vec<(Arc<str>, Arc<Completed>)>>,
}

/// The series of calls of one route served by one model that completed
/// with a 200 and no error.
#[derive(Debug, Default)]
pub(super) struct Completed {
    pub(super) requests: OnceLock<Counter>,
    pub(super) duration: OnceLock<Histogram>,
    pub(super) input_tokens: OnceLock<Histogram>,
    pub(super) output_tokens: OnceLock<Histogram>,
    pub(super) first_token: OnceLock<Histogram>,
}

impl Handles {
    /// The completed calls' series of this route served by `served`.
    pub(super) fn completed(&self, served: &Model) -> Arc<Completed> {
        let find = |list: &Vec<(Arc<str>, Arc<Completed>)>| {
            list.iter()
                .find(|(id, _)| Arc::ptr_eq(id, &served.id))
                .map(|(_, c)| c.clone())
        };
        // A poisoned lock holds a list that is still whole (a push either
        // happened or not).
        if let Some(found) = find(&self.completed.read().unwrap_or_else(|e| e.into_inner())) {
            return found;
        }
        let mut list = self.completed.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = find(&list) {
            return found;
        }
        let completed = Arc::<Completed>::default();
        list.push((served.id.clone(), completed.clone()));
        completed
    }
}

impl Model {
    fn new(id: &str) -> Self {
        let provider = split_model_id(id).map_or("", |(p, _)| p);
        Model {
            id: id.into(),
            provider: provider.into(),
            handles: Arc::default(),
        }
    }
}

/// Every model the options name, looked up without allocating.
#[derive(Debug)]
pub(super) struct Models {
    known: HashMap<Box<str>, Model>,
    other: Model,
    none: Model,
}

impl Models {
    pub(super) fn new<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let known = ids
            .into_iter()
            .map(|id| (id.into(), Model::new(id)))
            .collect();
        Models {
            known,
            other: Model {
                id: OTHER.into(),
                provider: OTHER.into(),
                handles: Arc::default(),
            },
            none: Model {
                id: "".into(),
                provider: "".into(),
                handles: Arc::default(),
            },
        }
    }

    /// The labels of `id`: its own if the options name it, else `other`;
    /// empty when there is none (a call that no model served).
    pub(super) fn get(&self, id: &str) -> &Model {
        if id.is_empty() {
            return &self.none;
        }
        self.known.get(id).unwrap_or(&self.other)
    }

    /// The `provider/model` ids (not the aliases), sorted: the models with a
    /// breaker.
    pub(super) fn upstream(&self) -> Vec<Model> {
        let mut models: Vec<Model> = self
            .known
            .values()
            .filter(|m| !m.provider.is_empty())
            .cloned()
            .collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        models
    }
}

/// A call, as the client saw it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Call {
    /// The model or route alias the client asked for.
    pub(super) gen_ai_request_model: Arc<str>,
    /// The model that served the answer (empty when none did).
    pub(super) gen_ai_response_model: Arc<str>,
    /// The serving model's provider.
    pub(super) gen_ai_provider_name: Arc<str>,
}

/// A call, with how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Ended {
    #[prometheus(flatten)]
    pub(super) call: Call,
    pub(super) http_response_status_code: u16,
    /// `completed`, `failed` or `cancelled`.
    pub(super) outcome: &'static str,
    /// The error's kind (empty on success).
    pub(super) error_type: &'static str,
}

/// A call's operation and error kind, as OpenTelemetry's GenAI metrics name them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Operation {
    pub(super) gen_ai_operation_name: &'static str,
    #[prometheus(flatten)]
    pub(super) call: Call,
    pub(super) error_type: &'static str,
}

/// A call's tokens of one type (`input` or `output`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Tokens {
    pub(super) gen_ai_operation_name: &'static str,
    #[prometheus(flatten)]
    pub(super) call: Call,
    pub(super) gen_ai_token_type: &'static str,
}

/// One upstream model (for an attempt, the model it called).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Upstream {
    pub(super) gen_ai_request_model: Arc<str>,
    pub(super) gen_ai_provider_name: Arc<str>,
}

impl Upstream {
    pub(super) fn of(model: &Model) -> Self {
        Upstream {
            gen_ai_request_model: model.id.clone(),
            gen_ai_provider_name: model.provider.clone(),
        }
    }
}

/// An upstream attempt and its outcome: `ok` or the error's kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Attempted {
    #[prometheus(flatten)]
    pub(super) model: Upstream,
    pub(super) outcome: &'static str,
}

/// A breaker's change of state: `to` is `open` or `closed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Transitioned {
    #[prometheus(flatten)]
    pub(super) model: Upstream,
    pub(super) to: &'static str,
}

/// A model passed over without a call, and why: `cooling`, `limited` or `shed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Skip {
    #[prometheus(flatten)]
    pub(super) model: Upstream,
    pub(super) reason: &'static str,
}

/// The route (or model) a client asked for.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Route {
    pub(super) gen_ai_request_model: Arc<str>,
}

/// A rejected request's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Status {
    pub(super) http_response_status_code: u16,
}
