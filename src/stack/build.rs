//! From a config to layers, clients, and the boxed service: each layer
//! built by its own `from_config`, the global parts checked by `config`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tower::ServiceBuilder;

use super::clients::{self, Keys};
use super::{describe, Info, Stack, StackBuilder};
use crate::chat::error::ConfigError;
use crate::chat::per_model::PerModel;
use crate::config::{resolve, Config, Resolved};
use crate::layers::cooldown::{CooldownLayer, CooldownStore};
use crate::layers::fallback::ProviderFallbackLayer;
use crate::layers::prepend::PrependMessagesLayer;
use crate::layers::retry::RetryLayer;
use crate::layers::timeout::TimeoutLayer;
use crate::layers::usage::UsageStore;
use crate::rng::SharedRng;
use crate::settings::Scope;
use crate::store::Stores;
use crate::{BoxChatService, Health, Providers, WeightedBalanceLayer};

pub(super) fn build(b: StackBuilder) -> Result<Stack, ConfigError> {
    let supplied: BTreeSet<String> = b.supplied.keys().cloned().collect();
    let env = b
        .env
        .unwrap_or_else(|| Arc::new(|var: &str| std::env::var(var).ok()));
    let config = &b.config;
    let (plan, mut errors) = resolve(config, &*env, &supplied);
    let rng = config.seed.map(SharedRng::seeded).unwrap_or_default();
    let own = Sections::from_config(config, &plan.scope, &*env, &rng, b.store, &mut errors);
    // The usage store given in code wins over `[store]`.
    let usage_store = b.usage.unwrap_or(own.stores.usage);
    // Keys cool in the models' store (ids `provider#label`), so replicas
    // sharing it skip a rate-limited key too.
    let keys = Keys {
        store: own.stores.cooldown,
        rng: rng.clone(),
    };

    let mut providers = Providers::builder();
    let mut registered = 0;
    for (name, service) in b.supplied {
        providers = providers.provider(name, service);
        registered += 1;
    }
    for client in &plan.clients {
        if let Some(service) = clients::build(client, &keys, &mut errors) {
            providers = providers.provider(client.name.clone(), service);
            registered += 1;
        }
    }
    // "No provider" is only news when nothing else went wrong.
    let providers = (registered > 0 || errors.is_empty()).then(|| providers.build());
    let health = (own.cooldown.as_ref()).map_or_else(Health::always_healthy, CooldownLayer::health);
    let fallback = keep(fallback_layer(&plan, &health), &mut errors);
    let balance = keep(
        balance_layer(&plan, &health, &rng, usage_store),
        &mut errors,
    );
    let prepend = has_messages(&plan.messages)
        .then(|| PrependMessagesLayer::new(plan.messages.clone()))
        .and_then(|r| keep(r, &mut errors));
    let providers = providers.and_then(|p| keep(p, &mut errors));

    let (Some(fallback), Some(balance), Some(retry), Some(providers), true) =
        (fallback, balance, own.retry, providers, errors.is_empty())
    else {
        return Err(errors);
    };
    let service = ServiceBuilder::new()
        .option_layer(b.select)
        .option_layer(own.total)
        .layer(fallback)
        .layer(balance)
        .option_layer(own.cooldown)
        .layer(retry)
        .option_layer(own.attempt)
        .option_layer(prepend)
        .service(providers);
    let info = Info {
        timeouts: config.timeout.summary(),
        groups: describe::fallback_groups(config, &plan),
        server_summary: describe::server(config, &plan),
        health,
        routes: plan.routes,
        summaries: plan.summaries,
        providers: plan.provider_summaries,
        models: plan.models,
        server: plan.server,
        store: own.store_summary,
    };
    Ok(Stack {
        service: BoxChatService::new(service),
        info: Arc::new(info),
    })
}

impl Config {
    /// Checks everything that can be checked without building the stack,
    /// reading keys from the process environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with_env(|var| std::env::var(var).ok())
    }

    /// [`validate`](Self::validate), reading environment variables with `env`.
    pub fn validate_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let (plan, mut errors) = resolve(self, &env, &BTreeSet::new());
        let rng = SharedRng::default();
        Sections::from_config(self, &plan.scope, &env, &rng, None, &mut errors);
        errors.into_result(())
    }
}

/// The layers (and stores) built from their own sections of a config;
/// `None` where a section has problems, which go to `errors`.
struct Sections {
    total: Option<TimeoutLayer>,
    attempt: Option<TimeoutLayer>,
    retry: Option<RetryLayer>,
    cooldown: Option<CooldownLayer>,
    stores: Stores,
    store_summary: String,
}

impl Sections {
    /// `store`, given in code, wins over `[store]` for the breakers.
    fn from_config(
        config: &Config,
        scope: &Scope,
        env: &dyn Fn(&str) -> Option<String>,
        rng: &SharedRng,
        store: Option<Arc<dyn CooldownStore>>,
        errors: &mut ConfigError,
    ) -> Sections {
        let (mut stores, store_summary) =
            keep(Stores::described(&config.store, env), errors).unwrap_or_else(Stores::memory);
        if let Some(store) = store {
            stores.cooldown = store;
        }
        let cooldown = CooldownLayer::from_config(
            &config.cooldown,
            scope,
            rng.clone(),
            stores.cooldown.clone(),
        );
        Sections {
            total: keep(TimeoutLayer::total_from_config(&config.timeout), errors).flatten(),
            attempt: keep(
                TimeoutLayer::attempt_from_config(&config.timeout, scope),
                errors,
            )
            .flatten(),
            retry: keep(
                RetryLayer::from_config(&config.retry, scope, rng.clone()),
                errors,
            ),
            cooldown: keep(cooldown, errors).flatten(),
            stores,
            store_summary,
        }
    }
}

fn keep<T>(result: Result<T, ConfigError>, errors: &mut ConfigError) -> Option<T> {
    result.map_err(|e| errors.extend(e)).ok()
}

fn has_messages(messages: &PerModel<Vec<crate::Message>>) -> bool {
    !messages.default_value().is_empty() || messages.overrides().next().is_some()
}

fn fallback_layer(plan: &Resolved, health: &Health) -> Result<ProviderFallbackLayer, ConfigError> {
    let mut b = ProviderFallbackLayer::builder().groups(plan.groups.clone());
    for (alias, list) in &plan.fallback_routes {
        b = b.route(alias.clone(), list.iter().cloned());
    }
    if !plan.context_window.global.is_empty() {
        b = b.on_context_window_exceeded(plan.context_window.global.iter().cloned());
    }
    for (model, list) in &plan.context_window.per_model {
        b = b.on_context_window_exceeded_for(model.clone(), list.iter().cloned());
    }
    if !plan.content_filter.global.is_empty() {
        b = b.on_content_filter(plan.content_filter.global.iter().cloned());
    }
    for (model, list) in &plan.content_filter.per_model {
        b = b.on_content_filter_for(model.clone(), list.iter().cloned());
    }
    let mut options = plan.options.clone();
    for (id, on) in &plan.recover.fallback {
        options = options.recover_streams_for(id.clone(), *on);
    }
    b.options(options)
        .health(health.clone())
        .build()
        .map_err(|e| prefixed("fallback", e))
}

fn balance_layer(
    plan: &Resolved,
    health: &Health,
    rng: &SharedRng,
    usage: Arc<dyn UsageStore>,
) -> Result<WeightedBalanceLayer, ConfigError> {
    // Routes are one-way: a weighted route's model requested by its id (by a
    // client, or by the fallback layer for another route) is just that model,
    // yet it still counts against its limits: every call of every model
    // passes this layer.
    let mut b = WeightedBalanceLayer::builder()
        .by_alias_only()
        .rng(rng.clone())
        .health(health.clone())
        .shared_usage_store(usage);
    for (id, weights) in &plan.weighted {
        b = b.route(id.clone(), weights.iter().cloned());
    }
    for (id, strategy, buffer) in &plan.strategies {
        b = b.strategy_for(id.clone(), *strategy);
        if let Some(buffer) = buffer {
            b = b.latency_buffer_for(id.clone(), *buffer);
        }
    }
    for (model, limits) in &plan.limits {
        b = b.limits(model.clone(), *limits);
    }
    let mut options = plan.options.clone();
    for (id, on) in &plan.recover.balance {
        options = options.recover_streams_for(id.clone(), *on);
    }
    b.options(options)
        .build()
        .map_err(|e| prefixed("balance", e))
}

/// `e` with every path put under `prefix`.
pub(super) fn prefixed(prefix: &str, e: ConfigError) -> ConfigError {
    let mut out = ConfigError::default();
    for p in e.problems() {
        out.push(under(prefix, &p.path), &p.message);
    }
    out
}

/// `path` under `prefix`.
pub(super) fn under(prefix: &str, path: &str) -> String {
    match path {
        "" => prefix.to_owned(),
        rest => format!("{prefix}.{rest}"),
    }
}
