//! One request's order of keys: tiers lowest first, spread by weight or in turn within a tier.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use crate::layers::health::HealthView;
use crate::rng::SharedRng;

/// What the plan needs to know of a key.
#[derive(Clone, Debug)]
pub(super) struct KeyMeta {
    pub(super) label: String,
    /// Its breaker's id in the store: `provider#label`.
    pub(super) id: String,
    pub(super) tier: u32,
    pub(super) weight: u32,
}

/// How calls spread over the keys of one tier.
pub(super) enum Pick {
    /// A weighted draw without replacement per request.
    Weighted(SharedRng),
    /// Each request starts one key further; clones share the turn.
    RoundRobin(AtomicUsize),
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pick::Weighted(_) => "Weighted",
            Pick::RoundRobin(_) => "RoundRobin",
        })
    }
}

/// The keys one request tries, in order, and the cooling key that is back first.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) order: Vec<usize>,
    pub(super) earliest: Option<(usize, Instant)>,
}

impl Plan {
    /// Notes that key `i` refuses calls until `until`.
    pub(super) fn cooling(&mut self, i: usize, until: Instant) {
        if self.earliest.is_none_or(|(_, e)| until < e) {
            self.earliest = Some((i, until));
        }
    }
}

/// The order for one request: each tier's available keys (lowest tier
/// first), ordered by `pick`. `tiers` are the index ranges of `keys` (sorted
/// by tier) sharing a tier. Cooling keys are left out, the first one back
/// noted.
pub(super) fn plan(
    keys: &[KeyMeta],
    tiers: &[Range<usize>],
    pick: &Pick,
    health: &dyn HealthView,
    now: Instant,
) -> Plan {
    let mut plan = Plan {
        order: Vec::with_capacity(keys.len()),
        earliest: None,
    };
    let turn = match pick {
        Pick::RoundRobin(next) => next.fetch_add(1, Ordering::Relaxed),
        Pick::Weighted(_) => 0,
    };
    for tier in tiers {
        let start = plan.order.len();
        for i in tier.clone() {
            match health.cooling_until(&keys[i].id) {
                Some(until) if until > now => plan.cooling(i, until),
                _ => plan.order.push(i),
            }
        }
        let available = &mut plan.order[start..];
        if available.is_empty() {
            continue;
        }
        match pick {
            Pick::RoundRobin(_) => available.rotate_left(turn % available.len()),
            Pick::Weighted(rng) => weighted_shuffle(available, keys, rng),
        }
    }
    plan
}

/// Orders `indices` by successive weighted draws without replacement.
fn weighted_shuffle(indices: &mut [usize], keys: &[KeyMeta], rng: &SharedRng) {
    for first in 0..indices.len().saturating_sub(1) {
        let rest = &indices[first..];
        let total: f64 = rest.iter().map(|&i| f64::from(keys[i].weight)).sum();
        let mut point = rng.f64() * total;
        let mut chosen = rest.len() - 1;
        for (j, &i) in rest.iter().enumerate() {
            let weight = f64::from(keys[i].weight);
            if point < weight {
                chosen = j;
                break;
            }
            point -= weight;
        }
        indices.swap(first, first + chosen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn keys(spec: &[(u32, u32)]) -> Vec<KeyMeta> {
        (spec.iter().enumerate())
            .map(|(i, &(tier, weight))| KeyMeta {
                label: format!("k{i}"),
                id: format!("p#k{i}"),
                tier,
                weight,
            })
            .collect()
    }

    struct Cooling(HashMap<String, Instant>);

    impl HealthView for Cooling {
        fn cooling_until(&self, model: &str) -> Option<Instant> {
            self.0.get(model).copied()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tiers_come_in_order_and_cooling_keys_are_left_out() {
        let keys = keys(&[(0, 1), (0, 1), (1, 1)]);
        let now = Instant::now();
        let later = now + std::time::Duration::from_secs(5);
        let health = Cooling(HashMap::from([("p#k1".to_owned(), later)]));
        let pick = Pick::RoundRobin(AtomicUsize::new(0));
        let p = plan(&keys, &[0..2, 2..3], &pick, &health, now);
        assert_eq!(p.order, [0, 2]);
        assert_eq!(p.earliest, Some((1, later)));
    }

    #[test]
    fn weighted_draws_follow_the_weights() {
        let keys = keys(&[(0, 3), (0, 1)]);
        let rng = SharedRng::seeded(7);
        let firsts = (0..4000)
            .filter(|_| {
                let mut order = [0, 1];
                weighted_shuffle(&mut order, &keys, &rng);
                order[0] == 0
            })
            .count();
        assert!((2800..3200).contains(&firsts), "{firsts}");
    }
}
