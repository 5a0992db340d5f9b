//! `model_list` into native sections: one provider per distinct endpoint
//! and key, one model id per deployment, one route per `model_name`, and
//! each deployment's limits, deadlines and retries keyed by its model id.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Deployment;
use super::read::{Reader, Secret};
use super::secrets::{FileEnv, Source};
use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::layers::limit::Limits;
use crate::settings::TimeLimit;

/// A model group: its deployments' model ids, in file order.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) members: Vec<(Deployment, String)>,
}

/// Adds a provider per distinct endpoint and key of `deployments`, and
/// their limits, deadlines and retries, to `config`; returns the groups
/// by `model_name`.
pub(crate) fn add_deployments(
    r: &mut Reader<'_>,
    deployments: Vec<Deployment>,
    config: &mut Config,
    file_env: &mut FileEnv,
) -> BTreeMap<String, Group> {
    // A model name such as "openai/gpt-4o" must not read as a model id of
    // a provider: such prefixes are not given to providers.
    let mut taken: BTreeSet<String> = (deployments.iter())
        .filter_map(|d| d.group.split_once('/').map(|(p, _)| p.to_owned()))
        .collect();
    let mut endpoints: Vec<(String, ProviderConfig)> = Vec::new();
    let mut ids = BTreeSet::new();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for d in deployments {
        let wanted = provider_config(r, &d, file_env, &endpoints);
        // The same endpoint and key, unless its model id is taken (two
        // deployments of one model are two candidates, so two providers).
        let unseen_key = matches!(
            (&d.key, &wanted.api_key_env),
            (Some(Secret::Literal(_)), None)
        );
        let existing = (endpoints.iter())
            .filter(|_| !unseen_key)
            .find(|(name, p)| *p == wanted && !ids.contains(&format!("{name}/{}", d.model)));
        let name = match existing {
            Some((name, _)) => name.clone(),
            None => {
                let name = fresh_name(d.kind, &mut taken);
                let provider = with_key_var(r, &d, &name, wanted, file_env);
                config.providers.insert(name.clone(), provider.clone());
                endpoints.push((name.clone(), provider));
                name
            }
        };
        let id = format!("{name}/{}", d.model);
        ids.insert(id.clone());
        per_deployment(&d, &id, config);
        groups
            .entry(d.group.clone())
            .or_insert_with(|| Group {
                members: Vec::new(),
            })
            .members
            .push((d, id));
    }
    groups
}

/// The provider a deployment calls, its key variable still to be named
/// when the key is written in the file.
fn provider_config(
    r: &mut Reader<'_>,
    d: &Deployment,
    file_env: &FileEnv,
    endpoints: &[(String, ProviderConfig)],
) -> ProviderConfig {
    let mut p = ProviderConfig::new(d.kind);
    match d.kind {
        ProviderKind::Azure => p.endpoint = d.base.clone(),
        _ => p.base_url = d.base.clone(),
    }
    if d.kind == ProviderKind::Azure {
        p.api_version = d.api_version.clone();
    } else if d.api_version.is_some() {
        r.warnings.push(
            format!("{}.litellm_params.api_version", d.path),
            "only azure deployments take an api_version; ignored",
        );
    }
    match (&d.organization, d.kind) {
        (Some(org), ProviderKind::OpenAi) => {
            p.headers
                .insert("OpenAI-Organization".to_owned(), org.clone());
        }
        (Some(_), _) => r.warnings.push(
            format!("{}.litellm_params.organization", d.path),
            "only openai deployments take an organization; ignored",
        ),
        (None, _) => {}
    }
    p.api_key_env = match &d.key {
        Some(Secret::Env(var)) => Some(var.clone()),
        // The same key written twice shares its provider.
        Some(Secret::Literal(key)) => (endpoints.iter())
            .filter_map(|(_, e)| e.api_key_env.as_ref())
            .find(|var| file_env.lookup(var, &|_| None).as_deref() == Some(key.as_str()))
            .cloned(),
        None => None,
    };
    p
}

/// `wanted`, with a key written in the file served as `LITELLM_KEY_<NAME>`.
fn with_key_var(
    r: &mut Reader<'_>,
    d: &Deployment,
    name: &str,
    mut wanted: ProviderConfig,
    file_env: &mut FileEnv,
) -> ProviderConfig {
    if let (Some(Secret::Literal(key)), None) = (&d.key, &wanted.api_key_env) {
        let var = format!(
            "LITELLM_KEY_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        r.warnings.push(
            format!("{}.litellm_params.api_key", d.path),
            format!(
                "a key written in the file: used as it is, never printed; the native \
                 config reads it from {var} (set it there, or use os.environ/)"
            ),
        );
        file_env.insert(var.clone(), Source::Literal(key.clone()));
        wanted.api_key_env = Some(var);
    }
    wanted
}

/// `openai`, then `openai-2`, ... : a name no other provider or model
/// group prefix has.
fn fresh_name(kind: ProviderKind, taken: &mut BTreeSet<String>) -> String {
    let base = kind.as_str();
    let name = std::iter::once(base.to_owned())
        .chain((2..).map(|n| format!("{base}-{n}")))
        .find(|name| !taken.contains(name))
        .unwrap_or_else(|| base.to_owned());
    taken.insert(name.clone());
    name
}

/// A deployment's own limits, deadlines and retries, keyed by its id.
fn per_deployment(d: &Deployment, id: &str, config: &mut Config) {
    let limits = Limits {
        rpm: d.rpm,
        tpm: d.tpm,
    };
    if limits.is_limited() {
        config.limits.0.insert(id.to_owned(), limits);
    }
    if let Some(t) = d.timeout {
        config
            .timeout
            .attempt
            .models
            .insert(id.to_owned(), TimeLimit::After(t));
    }
    if let Some(t) = d.stream_timeout {
        config
            .timeout
            .first_token
            .models
            .insert(id.to_owned(), TimeLimit::After(t));
    }
    if let Some(n) = d.max_retries {
        config.retry.max_retries.models.insert(id.to_owned(), n);
    }
}
