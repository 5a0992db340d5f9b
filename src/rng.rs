//! An injectable, seedable random source shared by the layers that draw.

use std::fmt;
use std::sync::{Arc, Mutex};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A random number generator that clones share. Seed it in tests for
/// reproducible draws and jitter.
#[derive(Clone)]
pub struct SharedRng(Arc<Mutex<SmallRng>>);

impl SharedRng {
    /// A generator with a fixed seed: the same seed gives the same sequence.
    pub fn seeded(seed: u64) -> Self {
        SharedRng(Arc::new(Mutex::new(SmallRng::seed_from_u64(seed))))
    }

    /// A generator seeded from the operating system.
    pub fn from_os() -> Self {
        SharedRng(Arc::new(Mutex::new(SmallRng::from_os_rng())))
    }

    /// A uniform float in `[0, 1)`.
    pub fn f64(&self) -> f64 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random::<f64>()
    }

    /// A uniform float in `[low, high)`; `low` when the range is empty.
    pub fn range_f64(&self, low: f64, high: f64) -> f64 {
        if high <= low {
            return low;
        }
        low + (high - low) * self.f64()
    }
}

impl Default for SharedRng {
    fn default() -> Self {
        SharedRng::from_os()
    }
}

impl fmt::Debug for SharedRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRng").finish_non_exhaustive()
    }
}
