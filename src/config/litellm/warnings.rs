//! What a LiteLLM config says that the translation does not honour, or
//! honours differently: one list, shown as one warning.

use std::fmt;

/// One key (or value) of the LiteLLM file and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// Where it is in the file: `router_settings.retry_policy`, `model_list[2].model_info`.
    pub path: String,
    /// What happens instead.
    pub message: String,
}

/// Every key of a LiteLLM config not honoured as LiteLLM would, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings(Vec<Warning>);

impl Warnings {
    /// Adds one.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Warning {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Each warning.
    pub fn iter(&self) -> impl Iterator<Item = &Warning> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether every key was honoured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether one is about `path` and says `text`.
    pub fn mentions(&self, path: &str, text: &str) -> bool {
        self.0
            .iter()
            .any(|w| w.path == path && w.message.contains(text))
    }
}

/// One warning: a first line, then `  path: message` per key.
impl fmt::Display for Warnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "{n} setting{s} of the LiteLLM config not honoured as LiteLLM would (see docs/LITELLM.md):"
        )?;
        for w in &self.0 {
            write!(f, "\n  {}: {}", w.path, w.message)?;
        }
        Ok(())
    }
}
