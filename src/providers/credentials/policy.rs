//! Which failures are a key's own, and how long such a key rests.

use std::fmt;
use std::time::Duration;

use crate::chat::{ChatError, ErrorKind};

/// What one key's outcome means for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Judgement {
    /// The key served (or the failure is not the key's: return it as is).
    Keep,
    /// The key failed on its own: cool it down for this long, try the next.
    Rotate(Duration),
}

/// The rotation settings of a [`Credentials`](super::Credentials) service.
#[derive(Clone)]
pub(super) struct RotationPolicy {
    /// The kinds that rotate, as `(kind, rest when the provider gave no Retry-After)`.
    pub(super) rotate_on: Vec<(ErrorKind, Duration)>,
    pub(super) quota_cooldown: Duration,
    pub(super) max_retry_after: Duration,
}

/// A key that hit a rate limit rests this long when the provider gives no
/// `Retry-After`: per-key limits are per minute, and the key is probed again
/// after it anyway.
pub const RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(10);
/// A revoked or unauthorised key rests this long before one probe.
pub const AUTH_COOLDOWN: Duration = Duration::from_secs(300);
/// A key out of quota (`insufficient_quota`) rests this long: quota comes
/// back with billing, not in seconds.
pub const QUOTA_COOLDOWN: Duration = Duration::from_secs(300);
/// The longest a provider's `Retry-After` keeps a key resting.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// The rest of a key failing with a kind added by
/// [`rotate_on`](super::CredentialsBuilder::rotate_on) without a cooldown of its own.
pub const OTHER_COOLDOWN: Duration = Duration::from_secs(60);

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            rotate_on: vec![
                (ErrorKind::RateLimited, RATE_LIMIT_COOLDOWN),
                (ErrorKind::Auth, AUTH_COOLDOWN),
            ],
            quota_cooldown: QUOTA_COOLDOWN,
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

impl RotationPolicy {
    /// Judges one key's outcome.
    pub(super) fn judge<T>(&self, result: &Result<T, ChatError>) -> Judgement {
        let Err(e) = result else {
            return Judgement::Keep;
        };
        let Some(&(_, rest)) = self.rotate_on.iter().find(|(k, _)| *k == e.kind()) else {
            return Judgement::Keep;
        };
        let rest = if is_quota(e) {
            self.quota_cooldown
        } else if let Some(after) = e.retry_after().filter(|d| !d.is_zero()) {
            after.min(self.max_retry_after)
        } else {
            rest
        };
        Judgement::Rotate(rest)
    }

    /// Sets the rest of `kind`, adding it to the rotating kinds.
    pub(super) fn set(&mut self, kind: ErrorKind, rest: Duration) {
        match self.rotate_on.iter_mut().find(|(k, _)| *k == kind) {
            Some(entry) => entry.1 = rest,
            None => self.rotate_on.push((kind, rest)),
        }
    }
}

/// OpenAI's and Azure's "out of credit" code.
fn is_quota(e: &ChatError) -> bool {
    e.code()
        .is_some_and(|c| c.eq_ignore_ascii_case("insufficient_quota"))
}

impl fmt::Debug for RotationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationPolicy")
            .field("rotate_on", &self.rotate_on)
            .field("quota_cooldown", &self.quota_cooldown)
            .field("max_retry_after", &self.max_retry_after)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(e: ChatError) -> Judgement {
        RotationPolicy::default().judge::<()>(&Err(e))
    }

    #[test]
    fn key_failures_rotate_for_their_own_rest() {
        let limited = ChatError::new(ErrorKind::RateLimited, "slow down");
        assert_eq!(judge(limited), Judgement::Rotate(RATE_LIMIT_COOLDOWN));
        let after =
            ChatError::new(ErrorKind::RateLimited, "x").with_retry_after(Duration::from_secs(7));
        assert_eq!(judge(after), Judgement::Rotate(Duration::from_secs(7)));
        let huge = ChatError::new(ErrorKind::RateLimited, "x")
            .with_retry_after(Duration::from_secs(1 << 20));
        assert_eq!(judge(huge), Judgement::Rotate(MAX_RETRY_AFTER));
        let quota = ChatError::new(ErrorKind::RateLimited, "x").with_code("insufficient_quota");
        assert_eq!(judge(quota), Judgement::Rotate(QUOTA_COOLDOWN));
        assert_eq!(
            judge(ChatError::new(ErrorKind::Auth, "revoked")),
            Judgement::Rotate(AUTH_COOLDOWN)
        );
    }

    #[test]
    fn other_failures_are_not_the_keys() {
        assert_eq!(
            judge(ChatError::new(ErrorKind::Server, "502")),
            Judgement::Keep
        );
        assert_eq!(
            judge(ChatError::new(ErrorKind::BadRequest, "x")),
            Judgement::Keep
        );
        let mut policy = RotationPolicy::default();
        policy.set(ErrorKind::NotFound, Duration::from_secs(1));
        let e = ChatError::new(ErrorKind::NotFound, "no access");
        assert_eq!(
            policy.judge::<()>(&Err(e)),
            Judgement::Rotate(Duration::from_secs(1))
        );
    }
}
