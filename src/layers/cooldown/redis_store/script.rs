//! The breaker script and its arguments.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, ScriptInvocation};

use crate::layers::cooldown::policy::{BreakerSettings, Verdict};
use crate::layers::cooldown::store::{Permit, PermitKind};
use crate::rng::SharedRng;

/// Loaded once per server (`EVALSHA`, with `EVAL` when the server lost it).
pub(super) static SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("breaker.lua")));

/// One reply of the script: what happened, the permit's token, a time from
/// now and a cooldown (both ms).
pub(super) type Reply = (String, String, i64, i64);

/// The `record` operation's arguments after the common ones.
pub(super) fn record_args(
    call: &mut ScriptInvocation<'_>,
    permit: Permit,
    verdict: Verdict,
    s: &BreakerSettings,
) {
    let kind = match permit.kind {
        PermitKind::Normal => "N",
        PermitKind::Probe => "P",
        PermitKind::Forced => "F",
    };
    let (verdict, wait) = match verdict {
        Verdict::Success => ("S", -1),
        Verdict::Failure => ("F", -1),
        Verdict::Trip(wait) => ("T", wait.map_or(-1, |w| ms(w) as i64)),
        Verdict::Ignore => ("I", -1),
    };
    let (ratio, bucket, min_calls) = match s.failure_ratio {
        Some(rule) => (rule.ratio, (ms(rule.window) / 10).max(1), rule.min_calls),
        None => (-1.0, 1, 0),
    };
    let (factor, max) = match s.growth {
        Some(g) => (g.factor, ms(g.max)),
        None => (-1.0, 0),
    };
    call.arg(kind).arg(permit.token).arg(verdict).arg(wait);
    call.arg(s.consecutive_failures)
        .arg(ratio)
        .arg(bucket)
        .arg(min_calls);
    call.arg(ms(s.cooldown)).arg(factor).arg(max);
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

pub(super) fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// Probe ids unique across processes: a random instance part and a counter,
/// within 2^52 so that Lua's numbers hold them exactly.
pub(super) struct ProbeIds {
    instance: u64,
    next: AtomicU64,
}

impl ProbeIds {
    pub(super) fn new() -> Self {
        ProbeIds {
            instance: (SharedRng::from_os().f64() * f64::from(1u32 << 20)) as u64,
            next: AtomicU64::new(0),
        }
    }

    pub(super) fn next(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        (self.instance << 32) | n
    }
}
