//! Logs on stderr: text for people at a terminal, JSON lines for log
//! collectors, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::args::LogFormat;

/// A layer of the global subscriber.
pub(crate) type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// What is logged without `RUST_LOG`.
const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber. `format` `None` picks text when stderr is
/// a terminal and JSON otherwise. Colours only at a terminal, and never
/// with `NO_COLOR` set (<https://no-color.org>).
///
/// The subscriber is a registry of layers, so an exporter (`exporter`: the
/// trace exporter's layer, with its own filter) can be added beside the
/// formatter; `RUST_LOG` then filters the logs alone.
pub(crate) fn init(format: Option<LogFormat>, exporter: Option<BoxedLayer>) {
    let terminal = std::io::stderr().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let (filter, bad_filter) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(e) => {
            // Unset is the normal case; a set but unreadable one is news.
            let set = std::env::var_os(EnvFilter::DEFAULT_ENV).is_some();
            (EnvFilter::new(DEFAULT_FILTER), set.then_some(e))
        }
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: BoxedLayer = match format {
        LogFormat::Text => fmt
            .with_target(false)
            .with_ansi(terminal && !no_color)
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    match exporter {
        // A global filter: spans the logs leave out are never created.
        None => tracing_subscriber::registry().with(fmt).with(filter).init(),
        Some(exporter) => tracing_subscriber::registry()
            .with(vec![fmt.with_filter(filter).boxed(), exporter])
            .init(),
    }
    if let Some(e) = bad_filter {
        tracing::warn!(error = %e, "RUST_LOG is not a valid filter; logging at {DEFAULT_FILTER}");
    }
}
