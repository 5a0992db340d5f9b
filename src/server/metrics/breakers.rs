//! `llm_fallback_breaker_open` and `llm_fallback_breaker_transitions_total`:
//! each configured model's breaker and how often it opened and closed, read
//! from the health view when scraped, so nothing is recorded between
//! scrapes.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::labels::{Model, Transitioned, Upstream};
use super::View;

/// The active generation's models, read from its health view.
pub(super) struct Breakers {
    view: Arc<ArcSwap<View>>,
}

impl Breakers {
    pub(super) fn new(view: Arc<ArcSwap<View>>) -> Self {
        Breakers { view }
    }
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers").finish_non_exhaustive()
    }
}

impl Collector for Breakers {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let view = self.view.load();
        if view.upstream.is_empty() {
            return Ok(());
        }
        let open = |m: &Model| ConstGauge::new(i64::from(!view.health.is_available(&m.id)));
        let mut family = encoder.encode_descriptor(
            "llm_fallback_breaker_open",
            "1 while the model's breaker is open (cooling down: not called but by its probe), else 0",
            None,
            open(&view.upstream[0]).metric_type(),
        )?;
        for model in &view.upstream {
            let labels = Upstream::of(model);
            open(model).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "llm_fallback_breaker_transitions",
            "Times the model's breaker opened (tripped, or its probe failed) and closed (its probe succeeded), counted by this process",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for model in &view.upstream {
            let counts = view.health.transitions(&model.id);
            for (to, n) in [("open", counts.opened), ("closed", counts.closed)] {
                let labels = Transitioned {
                    model: Upstream::of(model),
                    to,
                };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
