//! Checking the providers and routes of a config, and expanding route
//! aliases into what the fallback and balance layers take.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::ROUTE_PREFIX;
use super::resolve::{key_path, Ctx};
use super::types::{ProviderConfig, ProviderKind, RouteConfig, RouteTable};
use crate::chat::{split_model_id, validate_model_id, validate_provider_name};
use crate::layers::balance::{RouteCandidates, RoutingStrategy, WeightedModel};
use crate::providers::credentials::{Credential, CredentialConfig};
use crate::secret::{env_name_problem, ApiKey};

/// The most candidates a weighted route takes (the balance layer's limit).
const MAX_WEIGHTED: usize = 64;

/// A provider whose client the stack builds.
#[derive(Debug)]
pub(crate) struct ClientPlan {
    pub(crate) name: String,
    pub(crate) config: ProviderConfig,
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) key: Option<ApiKey>,
    /// Several keys (`keys`), rotated; empty for one key or none.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) keys: Vec<Credential>,
}

/// A route, checked.
#[derive(Debug)]
pub(crate) enum Route {
    Ordered(Vec<String>),
    Weighted {
        weights: Vec<(String, f64)>,
        fallbacks: Vec<String>,
        strategy: RoutingStrategy,
        latency_buffer: Option<f64>,
    },
}

impl Ctx<'_> {
    /// Checks each provider; plans a client for those not supplied in code.
    pub(crate) fn check_providers(&mut self) -> Vec<ClientPlan> {
        let mut plans = Vec::new();
        let config = self.config;
        for (name, p) in &config.providers {
            let path = format!("providers.{}", key_path(name));
            if let Err(e) = validate_provider_name(name) {
                self.errors.push(&path, e);
            } else if name.starts_with('_') {
                self.errors
                    .push(&path, "provider names starting with '_' are reserved");
            }
            if self.supplied.contains(name) {
                continue;
            }
            let before = self.errors.problems().len();
            self.check_endpoint(&path, p);
            let key = p.api_key_env.as_deref().and_then(|var| {
                self.env_value(&format!("{path}.api_key_env"), var)
                    .map(ApiKey::new)
            });
            let keys = self.keys(&path, p);
            for (header, value) in &p.headers {
                let at = format!("{path}.headers.{}", key_path(header));
                if http::HeaderName::try_from(header.as_str()).is_err() {
                    self.errors.push(&at, "not a valid HTTP header name");
                } else if http::HeaderValue::try_from(value.as_str()).is_err() {
                    // The value is not echoed: it may be a credential.
                    self.errors
                        .push(&at, "the value contains characters not allowed in a header");
                }
            }
            // A provider with problems gets no client: they are reported once.
            if self.errors.problems().len() > before {
                continue;
            }
            plans.push(ClientPlan {
                name: name.clone(),
                config: p.clone(),
                key,
                keys,
            });
        }
        plans
    }

    /// Reads the keys of `keys` from the environment (names, never values,
    /// in the problems).
    fn keys(&mut self, path: &str, p: &ProviderConfig) -> Vec<Credential> {
        let Some(list) = &p.keys else {
            return Vec::new();
        };
        let at = format!("{path}.keys");
        if p.api_key_env.is_some() {
            self.errors.push(
                &at,
                "give either `api_key_env` (one key) or `keys` (several), not both",
            );
        }
        let env = self.env;
        CredentialConfig::resolve_all_with(list, &at, env).unwrap_or_else(|e| {
            self.errors.extend(e);
            Vec::new()
        })
    }

    fn check_endpoint(&mut self, path: &str, p: &ProviderConfig) {
        let azure = p.kind == ProviderKind::Azure;
        if azure && p.base_url.is_some() {
            self.errors.push(
                format!("{path}.base_url"),
                "an azure provider takes `endpoint` (https://<resource>.openai.azure.com), not `base_url`",
            );
        }
        if !azure && p.endpoint.is_some() {
            self.errors.push(
                format!("{path}.endpoint"),
                format!(
                    "only azure providers take `endpoint`; a {} provider takes `base_url`",
                    p.kind
                ),
            );
        }
        if p.kind == ProviderKind::OpenAi && p.api_version.is_some() {
            self.errors.push(
                format!("{path}.api_version"),
                "only azure and anthropic providers take `api_version`",
            );
        }
        if azure {
            match &p.endpoint {
                None => self.errors.push(
                    format!("{path}.endpoint"),
                    "an azure provider needs `endpoint` (https://<resource>.openai.azure.com)",
                ),
                Some(url) => check_url(self, &format!("{path}.endpoint"), url),
            }
        } else if let Some(url) = &p.base_url {
            check_url(self, &format!("{path}.base_url"), url);
        }
    }

    /// Whether `name` is a route alias.
    pub(crate) fn is_alias(&self, name: &str) -> bool {
        self.config.routes.contains_key(name)
    }

    /// Checks a model id: well formed, and its provider configured.
    pub(crate) fn check_model(&mut self, path: &str, id: &str) -> bool {
        let problem = self.model_problem(id);
        problem.map_err(|e| self.errors.push(path, e)).is_ok()
    }

    /// What is wrong with a model id: malformed, or its provider not configured.
    pub(crate) fn model_problem(&self, id: &str) -> Result<(), String> {
        validate_model_id(id)?;
        let (provider, _) = split_model_id(id).expect("validated");
        if self.providers.contains(provider) {
            return Ok(());
        }
        let known: Vec<String> = self.providers.iter().map(|p| format!("{p:?}")).collect();
        let known = if known.is_empty() {
            "no provider is configured".to_owned()
        } else {
            format!("configured: {}", known.join(", "))
        };
        Err(format!(
            "model {id:?} names provider {provider:?}, which is not configured ({known})"
        ))
    }

    /// Checks a model id or a route alias.
    pub(crate) fn check_target(&mut self, path: &str, id: &str) {
        if !self.is_alias(id) {
            self.check_model(path, id);
        }
    }

    /// Checks every route and returns them by alias.
    pub(crate) fn check_routes(&mut self) -> BTreeMap<String, Route> {
        let mut routes = BTreeMap::new();
        let config = self.config;
        for (alias, route) in &config.routes {
            let path = format!("routes.{}", key_path(alias));
            self.check_alias(&path, alias);
            let checked = match route {
                RouteConfig::Ordered(models) => {
                    self.check_list(&path, alias, models, false);
                    Route::Ordered(models.clone())
                }
                RouteConfig::Table(table) => self.check_table(&path, alias, table),
            };
            routes.insert(alias.clone(), checked);
        }
        routes
    }

    fn check_alias(&mut self, path: &str, alias: &str) {
        if alias.is_empty() || alias.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.errors.push(
                path,
                format!("alias {alias:?} is empty or contains white space"),
            );
        } else if let Some((provider, _)) = split_model_id(alias) {
            if self.providers.contains(provider) || provider == ROUTE_PREFIX {
                self.errors.push(
                    path,
                    format!("alias {alias:?} reads as a model id of provider {provider:?}; pick a name without that prefix"),
                );
            }
        }
    }

    fn check_table(&mut self, path: &str, alias: &str, t: &RouteTable) -> Route {
        let fallbacks_path = format!("{path}.fallbacks");
        self.check_list(&fallbacks_path, alias, &t.fallbacks, true);
        let strategy = self.check_strategy(path, t);
        match (&t.models, &t.weights) {
            (Some(_), Some(_)) => {
                self.errors
                    .push(path, "give either `models` or `weights`, not both");
                Route::Ordered(Vec::new())
            }
            (None, None) => {
                self.errors
                    .push(path, "a route table needs `models` (in order) or `weights`");
                Route::Ordered(Vec::new())
            }
            (Some(models), None) => {
                self.check_list(&format!("{path}.models"), alias, models, false);
                Route::Ordered(models.iter().chain(&t.fallbacks).cloned().collect())
            }
            (None, Some(weights)) => Route::Weighted {
                weights: self.check_weights(&format!("{path}.weights"), weights),
                fallbacks: t.fallbacks.clone(),
                strategy,
                latency_buffer: t.latency_buffer,
            },
        }
    }

    /// A table's `strategy` and `latency_buffer`: for weighted routes only.
    fn check_strategy(&mut self, path: &str, t: &RouteTable) -> RoutingStrategy {
        let strategy = t.strategy.unwrap_or_default();
        if t.weights.is_none() {
            for (field, set) in [
                ("strategy", t.strategy.is_some()),
                ("latency_buffer", t.latency_buffer.is_some()),
            ] {
                if set {
                    self.errors.push(
                        format!("{path}.{field}"),
                        "only a route with `weights` picks among its candidates; this one tries them in order",
                    );
                }
            }
            return strategy;
        }
        if let Some(buffer) = t.latency_buffer {
            let at = format!("{path}.latency_buffer");
            if !(buffer.is_finite() && buffer >= 0.0) {
                self.errors.push(
                    &at,
                    format!("{buffer} is not a finite number of at least 0"),
                );
            } else if strategy != RoutingStrategy::LowestLatency {
                self.errors
                    .push(&at, "only used with strategy = \"lowest_latency\"");
            }
        }
        strategy
    }

    fn check_list(&mut self, path: &str, alias: &str, items: &[String], may_be_empty: bool) {
        if items.is_empty() && !may_be_empty {
            self.errors.push(path, "the route has no model");
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            if item == alias {
                self.errors
                    .push(&at, format!("route {alias:?} lists itself"));
            } else if !seen.insert(item) {
                self.errors.push(&at, format!("{item:?} is listed twice"));
            } else {
                self.check_target(&at, item);
            }
        }
    }

    fn check_weights(&mut self, path: &str, weights: &RouteCandidates) -> Vec<(String, f64)> {
        let pairs: Vec<(String, f64)> = match weights {
            RouteCandidates::Map(map) => map.iter().map(|(m, w)| (m.clone(), *w)).collect(),
            RouteCandidates::List(list) => list
                .iter()
                .map(|c| match c {
                    WeightedModel::Model(m) => (m.clone(), 1.0),
                    WeightedModel::Weighted { model, weight } => (model.clone(), *weight),
                })
                .collect(),
        };
        if pairs.is_empty() {
            self.errors.push(path, "the route has no candidate");
        } else if pairs.len() > MAX_WEIGHTED {
            self.errors.push(
                path,
                format!(
                    "{} candidates; a weighted route takes at most {MAX_WEIGHTED}",
                    pairs.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (model, weight) in &pairs {
            if self.is_alias(model) {
                self.errors.push(
                    path,
                    format!("weights take model ids; {model:?} is a route alias (list it in `fallbacks`)"),
                );
            } else {
                self.check_model(path, model);
            }
            if !seen.insert(model) {
                self.errors.push(path, format!("{model:?} is listed twice"));
            }
            if !weight.is_finite() {
                self.errors
                    .push(path, format!("weight for {model:?} is not a finite number"));
            } else if *weight < 0.0 {
                self.errors
                    .push(path, format!("weight for {model:?} is negative"));
            }
        }
        if !pairs.is_empty() && pairs.iter().all(|(_, w)| *w == 0.0) {
            self.errors
                .push(path, "every weight is zero; at least one must be positive");
        }
        pairs
    }

    /// Reads an environment variable that must be set and not empty.
    pub(crate) fn env_value(&mut self, path: &str, var: &str) -> Option<String> {
        if let Some(problem) = env_name_problem(var) {
            self.errors.push(path, problem);
            return None;
        }
        match (self.env)(var) {
            Some(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
            _ => {
                self.errors.push(
                    path,
                    format!("environment variable {var} is not set or empty"),
                );
                None
            }
        }
    }
}

fn check_url(ctx: &mut Ctx<'_>, path: &str, url: &str) {
    match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty()) => {}
        _ => ctx.errors.push(
            path,
            format!("{url:?} is not an http(s) URL (e.g. \"https://api.openai.com/v1\")"),
        ),
    }
}
