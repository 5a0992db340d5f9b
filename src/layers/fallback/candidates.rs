//! The fallback table, built once, and the per-request walk over it.

use std::collections::HashMap;
use std::sync::Arc;

use super::groups::FallbackGroups;
use crate::chat::{ChatError, ErrorKind};
use crate::layers::health::Health;
use crate::layers::route::CandidateSource;

/// An ordered, deduplicated list of model ids.
pub(crate) type List = Arc<[Arc<str>]>;

/// Routes dedicated to one error kind: for every model, and per model.
#[derive(Debug, Default)]
pub(crate) struct KindRoutes {
    pub(crate) global: Vec<(ErrorKind, List)>,
    pub(crate) per_model: HashMap<String, Vec<(ErrorKind, List)>>,
}

impl KindRoutes {
    /// Whether some route could re-route a failure of `model`.
    fn may_apply_to(&self, model: &str) -> bool {
        !self.global.is_empty() || self.per_model.contains_key(model)
    }

    fn get(&self, model: &str, kind: ErrorKind) -> Option<&List> {
        let find = |routes: &'_ [(ErrorKind, List)]| -> Option<usize> {
            routes.iter().position(|(k, _)| *k == kind)
        };
        if let Some(routes) = self.per_model.get(model) {
            if let Some(i) = find(routes) {
                return Some(&routes[i].1);
            }
        }
        find(&self.global).map(|i| &self.global[i].1)
    }
}

/// Every requestable id (a grouped model or a group name) with its candidates.
#[derive(Debug, Default)]
pub(crate) struct Table {
    lists: HashMap<String, List>,
    pub(crate) routes: KindRoutes,
}

impl Table {
    /// Builds the table from validated groups.
    pub(crate) fn new(groups: &FallbackGroups, routes: KindRoutes) -> Table {
        let mut lists: HashMap<String, Vec<Arc<str>>> = HashMap::new();
        let mut interned: HashMap<&str, Arc<str>> = HashMap::new();
        for group in groups.entries() {
            let members = dedup(group.models.iter().map(|m| {
                interned
                    .entry(m.as_str())
                    .or_insert_with(|| Arc::from(m.as_str()))
                    .clone()
            }));
            if let Some(name) = &group.name {
                lists.insert(name.clone(), members.clone());
            }
            if group.route {
                continue;
            }
            // A model in several groups tries itself, then each group's
            // members in declaration order.
            for model in &members {
                let list = lists
                    .entry(model.to_string())
                    .or_insert_with(|| vec![model.clone()]);
                for other in &members {
                    if !list.contains(other) {
                        list.push(other.clone());
                    }
                }
            }
        }
        Table {
            lists: lists.into_iter().map(|(k, v)| (k, v.into())).collect(),
            routes,
        }
    }

    /// The candidates of a request for `model`, or `None` when no group has
    /// it and no route dedicated to a kind could apply to it.
    pub(crate) fn candidates(self: &Arc<Self>, model: &str) -> Option<GroupCandidates> {
        let list = match self.lists.get(model) {
            Some(list) => list.clone(),
            // Alone, but a context-window (or other kind's) route may still apply.
            None if self.routes.may_apply_to(model) => List::from([Arc::from(model)]),
            None => return None,
        };
        Some(GroupCandidates {
            table: self.clone(),
            list,
            pos: 0,
            tried: Vec::new(),
        })
    }

    /// How many requestable ids the table knows.
    pub(crate) fn len(&self) -> usize {
        self.lists.len()
    }
}

/// Keeps the first occurrence of each id.
pub(crate) fn dedup(ids: impl IntoIterator<Item = Arc<str>>) -> Vec<Arc<str>> {
    let mut out: Vec<Arc<str>> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// One request's walk: down its list, or down a kind's dedicated route once
/// a failure re-routed it.
#[derive(Debug)]
pub(crate) struct GroupCandidates {
    table: Arc<Table>,
    list: List,
    pos: usize,
    /// Candidates of the lists left behind by a re-route (empty until then).
    tried: Vec<Arc<str>>,
}

impl CandidateSource for GroupCandidates {
    fn next(&mut self, _health: &Health) -> Option<Arc<str>> {
        while let Some(model) = self.list.get(self.pos) {
            self.pos += 1;
            if !self.tried.contains(model) {
                return Some(model.clone());
            }
        }
        None
    }

    fn reroute(&mut self, model: &str, error: &ChatError) -> bool {
        let Some(route) = self.table.routes.get(model, error.kind()) else {
            return false;
        };
        tracing::debug!(model, kind = %error.kind(), "re-routed to the kind's dedicated list");
        self.tried.extend(self.list[..self.pos].iter().cloned());
        self.list = route.clone();
        self.pos = 0;
        true
    }
}
