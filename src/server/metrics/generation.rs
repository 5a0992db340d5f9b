//! `llm_fallback_config_generation` and `llm_fallback_config_info`: which
//! config the server serves, read when scraped.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use super::View;

/// The active generation's number and hash.
pub(super) struct ConfigGeneration {
    view: Arc<ArcSwap<View>>,
}

impl ConfigGeneration {
    pub(super) fn new(view: Arc<ArcSwap<View>>) -> Self {
        ConfigGeneration { view }
    }
}

impl fmt::Debug for ConfigGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigGeneration").finish_non_exhaustive()
    }
}

impl Collector for ConfigGeneration {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let view = self.view.load();
        let g = &view.generation;
        let number = ConstGauge::new(i64::try_from(g.number).unwrap_or(i64::MAX));
        let family = encoder.encode_descriptor(
            "llm_fallback_config_generation",
            "The config generation served: 1 at start, one more on each successful reload",
            None,
            number.metric_type(),
        )?;
        number.encode(family)?;
        let info = ConstGauge::new(1i64);
        let mut family = encoder.encode_descriptor(
            "llm_fallback_config_info",
            "1, labelled with the hash of the config served",
            None,
            info.metric_type(),
        )?;
        let labels = [("config_hash", g.hash.as_str())];
        info.encode(family.encode_family(&labels)?)?;
        Ok(())
    }
}
