//! Route aliases expanded: what a route's list means to the fallback layer,
//! and which concrete models it may call.

use std::collections::{BTreeMap, BTreeSet};

use crate::layers::balance::RoutingStrategy;

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

/// The provider prefix of the ids that stand for weighted routes inside the
/// stack: the fallback layer calls `_route/<alias>`, which the balance layer
/// draws for. Provider names starting with `_` are reserved for it.
pub(crate) const ROUTE_PREFIX: &str = "_route";

/// The id under which the fallback layer calls a weighted route.
pub(crate) fn route_id(alias: &str) -> String {
    format!("{ROUTE_PREFIX}/{alias}")
}

/// Expands aliases: what each route's list means to the fallback layer, and
/// which concrete models it may end up calling.
pub(crate) struct Expander<'a> {
    pub(crate) routes: &'a BTreeMap<String, Route>,
}

/// The aliases of a cycle, in order, the first one repeated at the end.
pub(crate) type Cycle = Vec<String>;

impl Expander<'_> {
    /// The fallback layer's list for `alias`: model ids, with ordered
    /// aliases inlined and weighted ones as their [`route_id`].
    pub(crate) fn fallback_list(&self, alias: &str) -> Result<Vec<String>, Cycle> {
        let mut out = Vec::new();
        self.walk(alias, &mut vec![alias.to_owned()], &mut out)?;
        Ok(dedup(out))
    }

    /// One item of a list (a model id or an alias), as the fallback layer takes it.
    pub(crate) fn item(&self, item: &str) -> Result<Vec<String>, Cycle> {
        let mut out = Vec::new();
        self.expand(item, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    /// The models the fallback-layer ids `ids` may call, in order.
    pub(crate) fn concrete(&self, ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            match id
                .strip_prefix(ROUTE_PREFIX)
                .and_then(|a| a.strip_prefix('/'))
            {
                Some(alias) => match self.routes.get(alias) {
                    Some(Route::Weighted { weights, .. }) => {
                        out.extend(weights.iter().map(|(m, _)| m.clone()))
                    }
                    _ => out.push(id.clone()),
                },
                None => out.push(id.clone()),
            }
        }
        dedup(out)
    }

    fn walk(
        &self,
        alias: &str,
        chain: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), Cycle> {
        let items = match self.routes.get(alias) {
            None => return Ok(()),
            Some(Route::Ordered(items)) => items,
            Some(Route::Weighted { fallbacks, .. }) => {
                out.push(route_id(alias));
                fallbacks
            }
        };
        for item in items {
            self.expand(item, chain, out)?;
        }
        Ok(())
    }

    fn expand(
        &self,
        item: &str,
        chain: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), Cycle> {
        match self.routes.get(item) {
            None => out.push(item.to_owned()),
            Some(Route::Weighted { .. }) => out.push(route_id(item)),
            Some(Route::Ordered(_)) => {
                if let Some(start) = chain.iter().position(|a| a == item) {
                    let mut cycle = chain[start..].to_vec();
                    cycle.push(item.to_owned());
                    return Err(cycle);
                }
                chain.push(item.to_owned());
                self.walk(item, chain, out)?;
                chain.pop();
            }
        }
        Ok(())
    }
}

pub(crate) fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}
