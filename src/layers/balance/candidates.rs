//! The balance table, built once, and the per-request weighted draws.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use super::strategy::{Pick, Ranking};
use crate::layers::health::Health;
use crate::layers::route::CandidateSource;
use crate::rng::SharedRng;

/// The most candidates a route may have (the draws track them in a `u64`).
pub(crate) const MAX_CANDIDATES: usize = 64;

/// A request extension that makes the first draw deterministic: requests with
/// the same key get the same first choice (while it is not cooling down),
/// e.g. so that one user's conversation keeps hitting the same provider's
/// prompt cache.
///
/// The key is hashed to a point in `[0, 1)` that replaces the random number of
/// the first draw, so keys spread over the candidates by weight. The hash is
/// stable across processes and releases.
///
/// ```
/// use llm_fallback::{ChatRequest, Message};
/// use llm_fallback::layers::balance::StickyKey;
/// let mut request = ChatRequest::new("gpt-4o", [Message::user("hi")]);
/// request.extensions_mut().insert(StickyKey::new("user-42"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StickyKey(Arc<str>);

impl StickyKey {
    /// A key, e.g. a user or conversation id.
    pub fn new(key: impl AsRef<str>) -> Self {
        StickyKey(Arc::from(key.as_ref()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's point in `[0, 1)`: FNV-1a, then the SplitMix64 finalizer so
    /// that similar keys land far apart.
    pub(crate) fn point(&self) -> f64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.0.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (h >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Debug for StickyKey {
    // A key may identify a user: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyKey").finish_non_exhaustive()
    }
}

/// One alias and its weighted candidates.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) models: Box<[Arc<str>]>,
    pub(crate) weights: Box<[f64]>,
    /// How the route picks among available candidates (used with a ranking).
    pub(crate) pick: Pick,
}

/// Every route, and which route (and candidate) a requested id selects.
#[derive(Debug, Default)]
pub(crate) struct BalanceTable {
    routes: Vec<Route>,
    /// Alias -> (route, None); candidate -> (its first route, Some(index)).
    index: HashMap<String, (usize, Option<usize>)>,
}

impl BalanceTable {
    /// Builds the table from validated routes, in declaration order;
    /// `by_candidate`: whether requests naming a candidate are routed too.
    pub(crate) fn new(routes: Vec<(String, Route)>, by_candidate: bool) -> BalanceTable {
        let mut index = HashMap::new();
        for (r, (alias, _)) in routes.iter().enumerate() {
            index.insert(alias.clone(), (r, None));
        }
        let indexed = if by_candidate { &routes[..] } else { &[] };
        for (r, (_, route)) in indexed.iter().enumerate() {
            for (i, model) in route.models.iter().enumerate() {
                index.entry(model.to_string()).or_insert((r, Some(i)));
            }
        }
        BalanceTable {
            routes: routes.into_iter().map(|(_, route)| route).collect(),
            index,
        }
    }

    /// The draws of a request for `model`, or `None` when no route has it.
    pub(crate) fn candidates(
        self: &Arc<Self>,
        model: &str,
        sticky: Option<&StickyKey>,
        rng: &SharedRng,
        ranking: Option<&Arc<Ranking>>,
    ) -> Option<WeightedCandidates> {
        let &(route, named) = self.index.get(model)?;
        Some(WeightedCandidates {
            table: self.clone(),
            route,
            named,
            tried: 0,
            point: sticky.map(StickyKey::point),
            rng: rng.clone(),
            ranking: ranking.cloned(),
        })
    }

    /// How many routes there are.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }
}

/// One request's draws without replacement.
#[derive(Debug)]
pub(crate) struct WeightedCandidates {
    table: Arc<BalanceTable>,
    route: usize,
    /// The candidate the request named, to go first.
    named: Option<usize>,
    /// Candidates already handed out, one bit each.
    tried: u64,
    /// The sticky key's point, used by the first draw.
    point: Option<f64>,
    rng: SharedRng,
    /// What the route's strategy ranks by, and which candidates are full.
    ranking: Option<Arc<Ranking>>,
}

impl CandidateSource for WeightedCandidates {
    fn next(&mut self, health: &Health) -> Option<Arc<str>> {
        let route = &self.table.routes[self.route];
        if let Some(i) = self.named.take() {
            self.tried |= 1 << i;
            return Some(route.models[i].clone());
        }
        let mut now = None;
        let (mut left, mut available) = (0u64, 0u64);
        for (i, (model, &weight)) in route.models.iter().zip(&route.weights[..]).enumerate() {
            let bit = 1u64 << i;
            if self.tried & bit != 0 || weight <= 0.0 {
                continue;
            }
            left |= bit;
            let now = *now.get_or_insert_with(Instant::now);
            let cooling = health.cooling_until(model).is_some_and(|until| until > now);
            let full = || (self.ranking.as_ref()).is_some_and(|r| r.full(model, now));
            if !cooling && !full() {
                available |= bit;
            }
        }
        if let (Some(ranking), true) = (&self.ranking, available != 0) {
            available = ranking.shortlist(route.pick, &route.models, available);
        }
        let chosen = if available != 0 {
            let total = (0..route.models.len())
                .filter(|i| available & (1 << i) != 0)
                .map(|i| route.weights[i])
                .sum::<f64>();
            let u = self.point.take().unwrap_or_else(|| self.rng.f64());
            draw(&route.weights, available, u * total)
        } else if left != 0 {
            // Every candidate left cools or is full: hand them out in order,
            // so that the engine logs the skips and can force the
            // earliest-ending one (a full one refuses again: limits hold).
            left.trailing_zeros() as usize
        } else {
            return None;
        };
        self.tried |= 1 << chosen;
        Some(route.models[chosen].clone())
    }
}

/// The candidate of `set` whose cumulative weight interval holds `target`.
fn draw(weights: &[f64], set: u64, mut target: f64) -> usize {
    let mut last = 0;
    for (i, &weight) in weights.iter().enumerate() {
        if set & (1 << i) == 0 {
            continue;
        }
        if target < weight {
            return i;
        }
        target -= weight;
        last = i;
    }
    // Rounding left `target` just past the end: the last candidate.
    last
}
