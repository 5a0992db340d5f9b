//! From a config to layers, clients, and the boxed service: each layer
//! built by its own `from_config`, the global parts checked by `config`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tower::ServiceBuilder;

use super::clients::{self, Keys};
use super::state::{config_hash, fingerprint, StackState};
use super::{describe, Info, Stack, StackBuilder, Stores};
use crate::chat::{ConfigError, Message, PerModel};
use crate::config::{check, Config, ServerSetup};
use crate::layers::cooldown::{CooldownLayer, CooldownStore};
use crate::layers::health::Health;
use crate::layers::limit::LimitLayer;
use crate::layers::prepend::PrependMessagesLayer;
use crate::layers::retry::RetryLayer;
use crate::layers::timeout::TimeoutLayer;
use crate::rng::SharedRng;
use crate::settings::Scope;
use crate::{BoxChatService, Providers};

pub(super) fn build(b: StackBuilder) -> Result<Stack, ConfigError> {
    let supplied: BTreeSet<String> = b.supplied.keys().cloned().collect();
    let env = b
        .env
        .unwrap_or_else(|| Arc::new(|var: &str| std::env::var(var).ok()));
    let config = &b.config;
    let learned = b.state.as_ref().and_then(StackState::learned);
    let (global, mut errors) = check(config, &*env, &supplied, learned.as_ref());
    let rng = config.seed.map(SharedRng::seeded).unwrap_or_default();
    let state = b.state.as_ref();
    let mut sections = Sections::from_config(
        config,
        &global.scope,
        &*env,
        &rng,
        b.store,
        state,
        &mut errors,
    );
    // The usage store given in code wins over `[store]`.
    if let Some(usage) = b.usage {
        sections.stores.usage = usage;
    }
    let usage_store = sections.stores.usage.clone();
    // Keys cool in the models' store (ids `provider#label`), so replicas
    // sharing it skip a rate-limited key too.
    let keys = Keys {
        store: sections.stores.cooldown.clone(),
        rng: rng.clone(),
    };

    let mut providers = Providers::builder();
    let mut registered = 0;
    for (name, service) in b.supplied {
        providers = providers.provider(name, service);
        registered += 1;
    }
    for client in &global.clients {
        if let Some(service) = clients::build(client, &keys, &mut errors) {
            providers = providers.provider(client.name.clone(), service);
            registered += 1;
        }
    }
    // "No provider" is only news when nothing else went wrong.
    let providers = (registered > 0 || errors.is_empty()).then(|| providers.build());
    let health =
        (sections.cooldown.as_ref()).map_or_else(Health::always_healthy, CooldownLayer::health);
    let fallback = global.fallback.health(health.clone()).build();
    let fallback = keep(fallback.map_err(|e| e.under("fallback")), &mut errors);
    // Every call of a limited model passes the limit layer, right below
    // the balance: drawn by a weighted route, or requested by its id (by a
    // client, or by the fallback layer for another route) and passed through.
    let limit = (!global.limits.is_empty())
        .then(|| LimitLayer::from_config(&global.limits, &global.scope, |_| true, usage_store))
        .and_then(|r| keep(r, &mut errors));
    let mut balance = global.balance.health(health.clone()).rng(rng);
    if let Some(limit) = &limit {
        balance = balance.usage(limit.usage());
    }
    let balance = balance.build();
    let balance = keep(balance.map_err(|e| e.under("balance")), &mut errors);
    let prepend = has_messages(&global.messages)
        .then(|| {
            PrependMessagesLayer::builder()
                .per_model(global.messages.clone())
                .build()
        })
        .and_then(|r| keep(r, &mut errors));
    let providers = providers.and_then(|p| keep(p, &mut errors));

    let (Some(fallback), Some(balance), Some(retry), Some(providers), true) = (
        fallback,
        balance,
        sections.retry,
        providers,
        errors.is_empty(),
    ) else {
        return Err(errors);
    };
    let service = ServiceBuilder::new()
        .option_layer(b.select)
        .option_layer(sections.total)
        .layer(fallback)
        .layer(balance)
        .option_layer(limit)
        .option_layer(sections.cooldown)
        .layer(retry)
        .option_layer(sections.attempt)
        .option_layer(prepend)
        .service(providers);
    let server_summary = describe::server(config, &sections.server);
    let info = Info {
        timeouts: config.timeout.summary(),
        groups: global.groups_summary,
        server_summary,
        health,
        routes: global.routes,
        summaries: global.summaries,
        providers: global.provider_summaries,
        models: global.models,
        server: sections.server,
        store: sections.store_summary,
        stores: sections.stores,
        store_config: config.store.clone(),
        fingerprints: global
            .clients
            .iter()
            .map(|p| (p.name.clone(), fingerprint(p)))
            .collect(),
        config_hash: config_hash(config),
        learned: global.learned,
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
        let (global, mut errors) = check(self, &env, &BTreeSet::new(), None);
        let rng = SharedRng::default();
        Sections::from_config(self, &global.scope, &env, &rng, None, None, &mut errors);
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
    server: ServerSetup,
    stores: Stores,
    store_summary: String,
}

impl Sections {
    /// `store`, given in code, wins over `[store]` for the breakers; the
    /// stores of `state` are kept when `[store]` is unchanged.
    fn from_config(
        config: &Config,
        scope: &Scope,
        env: &dyn Fn(&str) -> Option<String>,
        rng: &SharedRng,
        store: Option<Arc<dyn CooldownStore>>,
        state: Option<&StackState>,
        errors: &mut ConfigError,
    ) -> Sections {
        let (mut stores, store_summary) =
            keep(Stores::described(&config.store, env), errors).unwrap_or_else(Stores::memory);
        if let Some(kept) = state.and_then(|s| s.stores_for(&config.store)) {
            stores = kept;
        }
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
            server: keep(ServerSetup::from_config(&config.server, env), errors).unwrap_or_default(),
            stores,
            store_summary,
        }
    }
}

fn keep<T>(result: Result<T, ConfigError>, errors: &mut ConfigError) -> Option<T> {
    result.map_err(|e| errors.extend(e)).ok()
}

fn has_messages(messages: &PerModel<Vec<Message>>) -> bool {
    !messages.default_value().is_empty() || messages.overrides().next().is_some()
}
