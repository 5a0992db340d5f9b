//! `model_list`: LiteLLM's deployments, read permissively.

use std::time::Duration;

use serde_norway::Value;

use super::read::{entries, join, Reader, Secret};
use crate::config::ProviderKind;

/// One `model_list` entry this crate can call.
#[derive(Clone, Debug)]
pub(crate) struct Deployment {
    /// Its path in the file, `model_list[3]`.
    pub(crate) path: String,
    /// The group (`model_name`) clients request.
    pub(crate) group: String,
    pub(crate) kind: ProviderKind,
    /// The model (or Azure deployment) name, without the provider prefix.
    pub(crate) model: String,
    /// `api_base` (Azure's endpoint), `os.environ/` resolved.
    pub(crate) base: Option<String>,
    pub(crate) key: Option<Secret>,
    pub(crate) api_version: Option<String>,
    pub(crate) rpm: Option<u64>,
    pub(crate) tpm: Option<u64>,
    pub(crate) weight: Option<f64>,
    pub(crate) order: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) stream_timeout: Option<Duration>,
    pub(crate) max_retries: Option<u32>,
    /// OpenAI's `organization`, sent as the `OpenAI-Organization` header.
    pub(crate) organization: Option<String>,
}

/// The deployments of `model_list` this crate can call, in file order;
/// the others are warnings, malformed ones problems.
pub(crate) fn deployments(r: &mut Reader<'_>, list: &Value) -> Vec<Deployment> {
    let mut out = Vec::new();
    for (i, entry) in r.list("model_list", list).unwrap_or(&[]).iter().enumerate() {
        let path = format!("model_list[{i}]");
        if let Some(d) = deployment(r, &path, entry) {
            out.push(d);
        }
    }
    out
}

fn deployment(r: &mut Reader<'_>, path: &str, entry: &Value) -> Option<Deployment> {
    let map = r.map(path, entry)?;
    let (mut group, mut params, mut rpm, mut tpm) = (None, None, None, None);
    for (key, value) in entries(r, path, map) {
        let at = join(path, &key);
        match key.as_str() {
            "model_name" => group = r.plain(&at, value),
            "litellm_params" => params = r.map(&at, value),
            "rpm" => rpm = r.count(&at, value),
            "tpm" => tpm = r.count(&at, value),
            "model_info" => r
                .warnings
                .push(at, "metadata (costs, modes, ids) is not used; ignored"),
            _ => r
                .warnings
                .push(at, "not a deployment setting here; ignored"),
        }
    }
    let params_path = join(path, "litellm_params");
    let Some(group) = group.filter(|g| !g.is_empty()) else {
        r.errors.push(
            join(path, "model_name"),
            "every deployment needs a `model_name`",
        );
        return None;
    };
    let Some(params) = params else {
        r.errors.push(
            &params_path,
            "every deployment needs `litellm_params` with `model`",
        );
        return None;
    };
    if group.contains('*') {
        r.warnings.push(
            join(path, "model_name"),
            "wildcard model names are not supported; the deployment is left out",
        );
        return None;
    }
    let mut d = Deployment {
        path: path.to_owned(),
        group,
        kind: ProviderKind::OpenAi,
        model: String::new(),
        base: None,
        key: None,
        api_version: None,
        rpm,
        tpm,
        weight: None,
        order: None,
        timeout: None,
        stream_timeout: None,
        max_retries: None,
        organization: None,
    };
    let (mut model, mut base_given) = (None, false);
    for (key, value) in entries(r, &params_path, params) {
        let at = join(&params_path, &key);
        match key.as_str() {
            "model" => model = r.plain(&at, value),
            "api_base" => {
                base_given = true;
                d.base = r.text(&at, value);
            }
            "api_key" => d.key = r.secret(&at, value),
            "api_version" => d.api_version = r.text(&at, value),
            "rpm" => d.rpm = r.count(&at, value).or(d.rpm),
            "tpm" => d.tpm = r.count(&at, value).or(d.tpm),
            "weight" => {
                d.weight = r.number(&at, value).filter(|w| {
                    let ok = *w >= 0.0;
                    if !ok {
                        r.errors.push(&at, format!("weight {w} is negative"));
                    }
                    ok
                })
            }
            "order" => d.order = r.count(&at, value),
            "organization" => d.organization = r.text(&at, value),
            "timeout" => d.timeout = r.seconds(&at, value),
            "stream_timeout" => d.stream_timeout = r.seconds(&at, value),
            "max_retries" => {
                d.max_retries = r
                    .count(&at, value)
                    .map(|n| n.min(u64::from(u32::MAX)) as u32)
            }
            _ => r.warnings.push(
                at,
                "not honoured (LiteLLM passes it to the provider); ignored",
            ),
        }
    }
    let model_path = join(&params_path, "model");
    let Some(model) = model.filter(|m| !m.is_empty()) else {
        r.errors
            .push(model_path, "every deployment needs `litellm_params.model`");
        return None;
    };
    let (kind, name) = match provider_of(&model) {
        Some(found) => found,
        None => {
            let provider = model.split_once('/').map_or("(none)", |(p, _)| p);
            r.warnings.push(
                model_path,
                format!(
                    "provider {:?} is not supported (openai/, azure/, anthropic/ are); the deployment is left out",
                    provider.escape_debug().to_string()
                ),
            );
            return None;
        }
    };
    d.kind = kind;
    d.model = name.to_owned();
    vendor_defaults(r, &mut d, base_given);
    Some(d)
}

/// The provider kind and model name of a LiteLLM `model`: a supported
/// prefix, or a bare name LiteLLM itself infers (`gpt-*`, `o1*`, `claude-*`).
pub(crate) fn provider_of(model: &str) -> Option<(ProviderKind, &str)> {
    match model.split_once('/') {
        Some(("openai", m)) if !m.is_empty() => Some((ProviderKind::OpenAi, m)),
        Some(("azure", m)) if !m.is_empty() => Some((ProviderKind::Azure, m)),
        Some(("anthropic", m)) if !m.is_empty() => Some((ProviderKind::Anthropic, m)),
        Some(_) => None,
        None if model.starts_with("claude-") => Some((ProviderKind::Anthropic, model)),
        None if ["gpt-", "chatgpt-", "o1", "o3", "o4"]
            .iter()
            .any(|p| model.starts_with(p)) =>
        {
            Some((ProviderKind::OpenAi, model))
        }
        None => None,
    }
}

/// What LiteLLM reads from the environment when a deployment leaves it out:
/// the vendor's key variable (not for an `api_base` of one's own, which is
/// called without a key) and Azure's endpoint and version. `base_given`:
/// the file has an `api_base` (already reported if it could not be read).
fn vendor_defaults(r: &mut Reader<'_>, d: &mut Deployment, base_given: bool) {
    if d.key.is_none() && d.base.is_none() {
        let var = match d.kind {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::Azure => "AZURE_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        };
        d.key = Some(Secret::Env(var.to_owned()));
    }
    if d.kind == ProviderKind::Azure {
        if d.base.is_none() && !base_given {
            d.base = r.var("AZURE_API_BASE");
        }
        if d.base.is_none() && !base_given {
            r.errors.push(
                format!("{}.litellm_params.api_base", d.path),
                "an azure deployment needs `api_base` (or AZURE_API_BASE set)",
            );
        }
        if d.api_version.is_none() {
            d.api_version = r.var("AZURE_API_VERSION");
        }
    }
    if d.kind == ProviderKind::Azure && d.key.is_none() {
        d.key = Some(Secret::Env("AZURE_API_KEY".to_owned()));
    }
}
