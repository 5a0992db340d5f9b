//! Replies drawn at random from a seeded generator: scattered faults for
//! soak tests, reproducible run to run.

use std::fmt;

use super::reply::ServerReply;
use crate::rng::SharedRng;

/// A weighted set of [`ServerReply`]s that a [`MockServer`](super::MockServer)
/// draws from for every call to a model
/// ([`always_random`](super::MockServer::always_random)), with a seeded
/// generator: the same seed and the same order of calls give the same
/// replies.
///
/// ```
/// use llm_fallback::mock::{RandomReplies, ServerReply};
///
/// // 15 % of calls fail, half with a 503, half with a reset connection.
/// let replies = RandomReplies::seeded(7)
///     .with(0.85, ServerReply::text("fine"))
///     .with(0.075, ServerReply::status(503))
///     .with(0.075, ServerReply::reset());
/// # let _ = replies;
/// ```
#[derive(Clone)]
pub struct RandomReplies {
    rng: SharedRng,
    choices: Vec<(f64, ServerReply)>,
}

impl RandomReplies {
    /// An empty set drawing with a generator seeded with `seed`.
    pub fn seeded(seed: u64) -> Self {
        RandomReplies {
            rng: SharedRng::seeded(seed),
            choices: Vec::new(),
        }
    }

    /// Adds `reply`, drawn with a probability proportional to `weight`
    /// (weights need not sum to 1; a weight that is not positive and finite
    /// is never drawn).
    pub fn with(mut self, weight: f64, reply: ServerReply) -> Self {
        if weight.is_finite() && weight > 0.0 {
            self.choices.push((weight, reply));
        }
        self
    }

    /// One reply, or `None` when the set is empty.
    pub(super) fn draw(&self) -> Option<ServerReply> {
        let total: f64 = self.choices.iter().map(|(w, _)| w).sum();
        let mut x = self.rng.range_f64(0.0, total);
        for (weight, reply) in &self.choices {
            if x < *weight {
                return Some(reply.clone());
            }
            x -= weight;
        }
        self.choices.last().map(|(_, reply)| reply.clone())
    }
}

impl fmt::Debug for RandomReplies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomReplies")
            .field("choices", &self.choices.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::reply::ReplyKind;

    fn is_error(reply: &ServerReply) -> bool {
        matches!(reply.kind, ReplyKind::Error { .. })
    }

    #[test]
    fn draws_follow_the_weights_and_the_seed() {
        let replies = || {
            RandomReplies::seeded(3)
                .with(0.8, ServerReply::text("ok"))
                .with(0.2, ServerReply::status(500))
                .with(f64::NAN, ServerReply::reset())
        };
        let (a, b) = (replies(), replies());
        let draws: Vec<bool> = (0..10_000).map(|_| is_error(&a.draw().unwrap())).collect();
        let again: Vec<bool> = (0..10_000).map(|_| is_error(&b.draw().unwrap())).collect();
        assert_eq!(draws, again, "same seed, same replies");
        let errors = draws.iter().filter(|e| **e).count();
        assert!((1_800..2_200).contains(&errors), "{errors} of 10 000");
        assert!(RandomReplies::seeded(1).draw().is_none());
    }
}
