//! From a resolved config to layers, clients, and the boxed service.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tower::ServiceBuilder;

use super::clients::{self, Keys};
use super::{describe, Info, Stack, StackBuilder, Stores};
use crate::chat::{ConfigError, PerModel};
use crate::config::{resolve, HumanDuration, Resolved};
use crate::layers::cooldown::CooldownLayer;
use crate::layers::fallback::ProviderFallbackLayer;
use crate::layers::limit::{LimitLayer, UsageView};
use crate::layers::prepend::PrependMessagesLayer;
use crate::layers::retry::RetryLayer;
use crate::layers::timeout::{StreamDeadlines, TimeoutLayer};
use crate::rng::SharedRng;
use crate::{BoxChatService, Health, Providers, WeightedBalanceLayer};

pub(super) fn build(b: StackBuilder) -> Result<Stack, ConfigError> {
    let supplied: BTreeSet<String> = b.supplied.keys().cloned().collect();
    let env = b
        .env
        .unwrap_or_else(|| Arc::new(|var: &str| std::env::var(var).ok()));
    let (plan, mut errors) = resolve(&b.config, &*env, &supplied);
    let rng = plan.seed.map(SharedRng::seeded).unwrap_or_default();
    // The stores given in code win over `[store]`.
    let stores = stores(&plan);
    let cooldown_store = b.store.unwrap_or(stores.cooldown);
    let usage_store = b.usage.unwrap_or(stores.usage);
    let cooldown = plan.cooldown.as_ref().map(|c| {
        let b = match c.throttle {
            Some(t) => CooldownLayer::builder().adaptive_throttle(t),
            None => CooldownLayer::builder().without_adaptive_throttle(),
        };
        b.when_all_cooling(c.all_cooling)
            .with_rng(rng.clone())
            .consecutive_failures(c.consecutive_failures.clone())
            .cooldown(c.cooldown.clone())
            .failure_ratio_per_model(PerModel::new(c.failure_ratio))
            .growth_per_model(PerModel::new(c.growth))
            .max_retry_after(c.max_retry_after)
            .shared_store(cooldown_store.clone())
            .build()
    });
    let cooldown = cooldown.and_then(|r| keep(r, &mut errors));
    // Keys cool in the models' store (ids `provider#label`), so replicas
    // sharing it skip a rate-limited key too.
    let keys = Keys {
        store: cooldown_store,
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
    let health = cooldown
        .as_ref()
        .map_or_else(Health::always_healthy, CooldownLayer::health);
    let fallback = keep(fallback_layer(&plan, &health), &mut errors);
    // Every call of a limited model passes the limit layer, right below
    // the balance: drawn by a weighted route, or requested by its id (by a
    // client, or by the fallback layer for another route) and passed through.
    let limit = (!plan.limits.is_empty())
        .then(|| LimitLayer::from_config(&plan.limits, usage_store, |_| Ok(())))
        .and_then(|r| keep(r, &mut errors));
    let usage = limit.as_ref().map(LimitLayer::usage);
    let balance = keep(balance_layer(&plan, &health, &rng, usage), &mut errors);
    let retry = keep(retry_layer(&plan, &rng), &mut errors);
    let prepend = has_messages(&plan.messages)
        .then(|| {
            PrependMessagesLayer::builder()
                .per_model(plan.messages.clone())
                .build()
        })
        .and_then(|r| keep(r, &mut errors));
    let providers = providers.and_then(|p| keep(p, &mut errors));

    let (Some(fallback), Some(balance), Some(retry), Some(providers), true) =
        (fallback, balance, retry, providers, errors.is_empty())
    else {
        return Err(errors);
    };
    let service = ServiceBuilder::new()
        .option_layer(b.select)
        .option_layer(plan.total.map(TimeoutLayer::total))
        .layer(fallback)
        .layer(balance)
        .option_layer(limit)
        .option_layer(cooldown)
        .layer(retry)
        .option_layer(attempt_layer(&plan))
        .option_layer(prepend)
        .service(providers);
    let info = Info {
        timeouts: describe_timeouts(&plan),
        groups: describe::fallback_groups(&plan),
        server_summary: describe::server(&b.config, &plan),
        health,
        routes: plan.routes,
        summaries: plan.summaries,
        providers: plan.provider_summaries,
        models: plan.models,
        server: plan.server,
        store: plan.store.summary,
    };
    Ok(Stack {
        service: BoxChatService::new(service),
        info: Arc::new(info),
    })
}

/// The stores `[store]` describes (a Redis connection opens on first use).
fn stores(plan: &Resolved) -> Stores {
    #[cfg(feature = "redis")]
    if let Some(connection) = &plan.store.redis {
        return Stores::redis(connection);
    }
    let _ = plan;
    Stores::memory()
}

fn keep<T>(result: Result<T, ConfigError>, errors: &mut ConfigError) -> Option<T> {
    result.map_err(|e| errors.extend(e)).ok()
}

/// Each attempt's deadline and the stream deadlines, unless there are none.
fn attempt_layer(plan: &Resolved) -> Option<TimeoutLayer> {
    let none = StreamDeadlines::none();
    let streams = &plan.streams;
    let complete = &plan.complete;
    if plan.attempt.is_none()
        && *streams.default_value() == none
        && streams.overrides().all(|(_, d)| *d == none)
        && complete.default_value().is_none()
        && complete.overrides().all(|(_, d)| d.is_none())
    {
        return None;
    }
    let attempt = plan.attempt.clone().unwrap_or(PerModel::new(None));
    Some(
        TimeoutLayer::per_model(attempt)
            .with_stream_deadlines(streams.clone())
            .with_complete_answers(complete.clone()),
    )
}

/// The effective default deadlines, for `--check`.
fn describe_timeouts(plan: &Resolved) -> String {
    let show =
        |d: Option<Duration>| d.map_or("none".to_owned(), |d| HumanDuration::from(d).to_string());
    let streams = plan.streams.default_value();
    let stream_attempt = plan.attempt.as_ref().and_then(|a| *a.default_value());
    format!(
        "total {}; attempt: complete answers {}, streams {}; \
         streams: headers {}, first token {}, idle {}, total {}; connect {}",
        show(plan.total),
        show(*plan.complete.default_value()),
        show(stream_attempt),
        show(streams.headers()),
        show(streams.first_token()),
        show(streams.idle()),
        show(streams.total()),
        show(Some(crate::layers::timeout::DEFAULT_CONNECT)),
    )
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
    for (kind, on) in &plan.fallback_on {
        b = b.fallback_on(*kind, *on);
    }
    if let Some(n) = plan.max_fallbacks {
        b = b.max_fallbacks(n);
    }
    if let Some(n) = plan.max_upstream_calls {
        b = b.max_upstream_calls(n);
    }
    b = b.recover_streams(plan.recover.default);
    for (id, on) in &plan.recover.fallback {
        b = b.recover_streams_for(id.clone(), *on);
    }
    for id in &plan.prefill {
        b = b.prefill_supported(id.clone());
    }
    b.with_health(health.clone())
        .build()
        .map_err(|e| prefixed("fallback", e))
}

fn balance_layer(
    plan: &Resolved,
    health: &Health,
    rng: &SharedRng,
    usage: Option<UsageView>,
) -> Result<WeightedBalanceLayer, ConfigError> {
    // Routes are one-way: a weighted route's model requested by its id (by a
    // client, or by the fallback layer for another route) is just that model.
    let mut b = WeightedBalanceLayer::builder()
        .by_alias_only()
        .with_rng(rng.clone())
        .with_health(health.clone());
    if let Some(usage) = usage {
        b = b.usage(usage);
    }
    for (id, weights) in &plan.weighted {
        b = b.route(id.clone(), weights.iter().cloned());
    }
    for (id, strategy, buffer) in &plan.strategies {
        b = b.strategy_for(id.clone(), *strategy);
        if let Some(buffer) = buffer {
            b = b.latency_buffer_for(id.clone(), *buffer);
        }
    }
    for (kind, on) in &plan.fallback_on {
        b = b.fallback_on(*kind, *on);
    }
    if let Some(n) = plan.max_fallbacks {
        b = b.max_fallbacks(n);
    }
    if let Some(n) = plan.max_upstream_calls {
        b = b.max_upstream_calls(n);
    }
    b = b.recover_streams(plan.recover.default);
    for (id, on) in &plan.recover.balance {
        b = b.recover_streams_for(id.clone(), *on);
    }
    for id in &plan.prefill {
        b = b.prefill_supported(id.clone());
    }
    b.build().map_err(|e| prefixed("balance", e))
}

fn retry_layer(plan: &Resolved, rng: &SharedRng) -> Result<RetryLayer, ConfigError> {
    let r = &plan.retry;
    let b = RetryLayer::builder()
        .max_retries(r.max_retries.clone())
        .backoff(r.backoff.clone())
        .max_retry_after(r.max_retry_after)
        .with_rng(rng.clone());
    match &r.budget {
        Some(budget) => b.budget(budget.clone()),
        None => b.no_budget(),
    }
    .build()
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
