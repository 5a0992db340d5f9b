//! Resolving mid-stream recovery: which requested ids recover, and which
//! candidates continue a partial answer (assistant prefill).

use std::collections::BTreeSet;

use super::ctx::Ctx;
use super::expand::route_id;
use super::types::ProviderConfig;
use crate::chat::split_model_id;
use crate::layers::fallback::FallbackGroups;
use crate::settings::key_path;

/// `fallback.recover_streams`, resolved for the two routing layers.
#[derive(Debug, Default)]
pub(crate) struct RecoverStreams {
    /// For every request not listed.
    pub(crate) default: bool,
    /// Per id the fallback layer is asked for: aliases, group names, grouped models.
    pub(crate) fallback: Vec<(String, bool)>,
    /// Per weighted route, as the balance layer is asked for it (`_route/<alias>`).
    pub(crate) balance: Vec<(String, bool)>,
}

impl RecoverStreams {
    /// Whether a request for `alias` recovers.
    pub(crate) fn for_alias(&self, alias: &str) -> bool {
        (self.fallback.iter().rev())
            .find(|(id, _)| id == alias)
            .map_or(self.default, |(_, on)| *on)
    }
}

impl Ctx<'_> {
    /// Checks the keys of `fallback.recover_streams`: each must be an id a
    /// request names that has other candidates to finish a stream.
    pub(crate) fn recovery(
        &mut self,
        groups: &FallbackGroups,
        weighted: &BTreeSet<&str>,
    ) -> RecoverStreams {
        let config = self.config;
        let setting = &config.fallback.recover_streams;
        let mut plan = RecoverStreams {
            default: setting.default.unwrap_or(false),
            ..RecoverStreams::default()
        };
        let entries = groups.entries();
        let grouped: BTreeSet<&str> = (entries.iter())
            .flat_map(|g| g.name.iter().chain(&g.models))
            .map(String::as_str)
            .collect();
        for (key, on) in &setting.models {
            let path = format!("fallback.recover_streams.models.{}", key_path(key));
            if self.is_alias(key) {
                if weighted.contains(key.as_str()) {
                    plan.balance.push((route_id(key), *on));
                }
                plan.fallback.push((key.clone(), *on));
            } else if grouped.contains(key.as_str()) {
                plan.fallback.push((key.clone(), *on));
            } else if self.check_model(&path, key) {
                self.errors.push(
                    path,
                    format!(
                        "{key:?} is in no route or fallback group, so no other model could \
                         finish its stream; name the route alias or group requested"
                    ),
                );
            }
        }
        plan
    }

    /// The ids the routing layers call that continue a partial answer: the
    /// models of providers with `supports_prefill`, and the weighted routes
    /// (`_route/<alias>`) whose every candidate does.
    pub(crate) fn prefill(
        &self,
        models: &[String],
        weighted: &[(String, Vec<(String, f64)>)],
    ) -> Vec<String> {
        let providers = &self.config.providers;
        let prefills = |id: &str| {
            split_model_id(id)
                .and_then(|(provider, _)| providers.get(provider))
                .is_some_and(ProviderConfig::prefill)
        };
        let routes = (weighted.iter())
            .filter(|(_, models)| models.iter().all(|(m, _)| prefills(m)))
            .map(|(id, _)| id.clone());
        (models.iter().filter(|m| prefills(m)).cloned())
            .chain(routes)
            .collect()
    }
}
