//! `llm_fallback_breaker_open` and `llm_fallback_breaker_transitions_total`:
//! each configured model's breaker and how often it opened and closed, read
//! from the health view when scraped, so nothing is recorded between
//! scrapes.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::labels::{Model, Transitioned, Upstream};
use crate::layers::health::Health;

pub(super) struct Breakers {
    models: Vec<Model>,
    health: Health,
}

impl Breakers {
    pub(super) fn new(models: Vec<Model>, health: Health) -> Self {
        Breakers { models, health }
    }
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

impl Collector for Breakers {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        if self.models.is_empty() {
            return Ok(());
        }
        let open = |m: &Model| ConstGauge::new(i64::from(!self.health.is_available(&m.id)));
        let mut family = encoder.encode_descriptor(
            "llm_fallback_breaker_open",
            "1 while the model's breaker is open (cooling down: not called but by its probe), else 0",
            None,
            open(&self.models[0]).metric_type(),
        )?;
        for model in &self.models {
            let labels = Upstream::of(model);
            open(model).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "llm_fallback_breaker_transitions",
            "Times the model's breaker opened (tripped, or its probe failed) and closed (its probe succeeded), counted by this process",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for model in &self.models {
            let counts = self.health.transitions(&model.id);
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
