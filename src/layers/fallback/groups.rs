//! Fallback groups, from code or parsed from the `MODEL_FALLBACK_GROUPS` variable.

use std::collections::HashSet;

use crate::chat::{validate_model_id, ConfigError};

/// Ordered lists of equivalent models (list order = priority), some of them
/// named.
///
/// A named group is also an alias: a request for the name tries the list in
/// order, and a request for one of its members tries that member first, then
/// the others, just as for an unnamed group.
///
/// # The `MODEL_FALLBACK_GROUPS` format
///
/// Groups are separated by `;` (or new lines), the models of a group by `,`.
/// A group may start with `name=` to name it. White space around items is
/// ignored, and so are empty groups (a trailing `;`).
///
/// ```text
/// MODEL_FALLBACK_GROUPS="azure/gpt-4o-mini,openai/gpt-4o-mini; fast=groq/llama-3.1-8b,openai/gpt-4o-mini"
/// ```
///
/// Here a request for `azure/gpt-4o-mini` tries it, then `openai/gpt-4o-mini`;
/// a request for `openai/gpt-4o-mini` tries it, then `azure/gpt-4o-mini`, then
/// `groq/llama-3.1-8b` (it is in both groups); a request for `fast` tries
/// `groq/llama-3.1-8b`, then `openai/gpt-4o-mini`.
///
/// Every model must be a `provider/model` id; an unnamed group needs at least
/// two distinct models (one model alone has nothing to fall back to, and is
/// usually a `;` typed for a `,`); a name may not contain white space, `,`,
/// `;` or `=`, and may not be a model of any group. Any mistake is a
/// [`ConfigError`] naming the group and the bad part:
///
/// ```
/// use llm_fallback::layers::fallback::FallbackGroups;
/// let groups = FallbackGroups::parse("azure/gpt-4o-mini, openai/gpt-4o-mini; fast=groq/llama-3.1-8b").unwrap();
/// assert_eq!(groups.len(), 2);
/// let e = FallbackGroups::parse("azure/gpt-4o-mini,,openai/gpt-4o-mini").unwrap_err();
/// assert!(e.to_string().contains("group 1"), "{e}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FallbackGroups {
    entries: Vec<Group>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) name: Option<String>,
    pub(crate) models: Vec<String>,
    /// A route: only the name leads to the list; its members are not grouped.
    pub(crate) route: bool,
}

impl FallbackGroups {
    /// The environment variable [`from_env`](Self::from_env) reads.
    pub const ENV_VAR: &'static str = "MODEL_FALLBACK_GROUPS";

    /// No group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a group of equivalent models, in priority order.
    pub fn group<I>(self, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.with_entry(None, models, false)
    }

    /// Adds a group that a request can also name by `name` (an alias).
    pub fn named<I>(self, name: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.with_entry(Some(name.into()), models, false)
    }

    /// Adds a route: a request for `name` tries `models` in order. Unlike a
    /// [named group](Self::named), it works one way only: a request for one
    /// of the models is not sent to the others (unless a group has them), so
    /// listing a bigger model as the last resort of an alias does not make
    /// requests for that model fall back to smaller ones.
    ///
    /// ```
    /// use llm_fallback::layers::fallback::FallbackGroups;
    /// use llm_fallback::ProviderFallbackLayer;
    /// let groups = FallbackGroups::new()
    ///     .route("fast", ["groq/llama-3.1-8b", "openai/gpt-4o-mini", "openai/gpt-4o"]);
    /// let layer = ProviderFallbackLayer::builder().groups(groups).build().unwrap();
    /// # let _ = layer;
    /// ```
    pub fn route<I>(self, name: impl Into<String>, models: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.with_entry(Some(name.into()), models, true)
    }

    fn with_entry<I>(mut self, name: Option<String>, models: I, route: bool) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.entries.push(Group {
            name,
            models: models.into_iter().map(Into::into).collect(),
            route,
        });
        self
    }

    /// Adds every group of `other`, after the existing ones.
    pub fn extend(&mut self, other: FallbackGroups) {
        self.entries.extend(other.entries);
    }

    /// How many groups there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn entries(&self) -> &[Group] {
        &self.entries
    }

    /// Parses the [`MODEL_FALLBACK_GROUPS` format](Self#the-model_fallback_groups-format).
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        parse_from(Self::ENV_VAR, spec)
    }

    /// Reads and parses `MODEL_FALLBACK_GROUPS`; no group when it is unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_var(Self::ENV_VAR)
    }

    /// Reads and parses the variable `var`, in the same format; no group when
    /// it is unset.
    pub fn from_env_var(var: &str) -> Result<Self, ConfigError> {
        match std::env::var(var) {
            Ok(spec) => parse_from(var, &spec),
            Err(std::env::VarError::NotPresent) => Ok(Self::new()),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ConfigError::new(var, "the value is not valid UTF-8"))
            }
        }
    }

    /// Reports every problem, `report(group index, message)`.
    pub(crate) fn check(&self, mut report: impl FnMut(usize, String)) {
        let members: HashSet<&str> = self
            .entries
            .iter()
            .flat_map(|g| g.models.iter().map(String::as_str))
            .collect();
        let mut names = HashSet::new();
        for (i, group) in self.entries.iter().enumerate() {
            if let Some(name) = &group.name {
                if let Err(e) = check_name(name) {
                    report(i, e);
                } else if members.contains(name.as_str()) {
                    report(i, format!("group name {name:?} is also a model of a group"));
                } else if !names.insert(name.as_str()) {
                    report(i, format!("group name {name:?} is used twice"));
                }
            }
            for model in &group.models {
                if let Err(e) = validate_model_id(model) {
                    report(i, e);
                }
            }
            let distinct: HashSet<&str> = group.models.iter().map(String::as_str).collect();
            if group.name.is_none() && distinct.len() < 2 {
                report(
                    i,
                    "a fallback group needs at least two distinct models (separate them with ',')"
                        .to_owned(),
                );
            } else if distinct.is_empty() {
                report(i, "the group has no model".to_owned());
            }
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the group name is empty".to_owned());
    }
    match name
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, ',' | ';' | '='))
    {
        Some(c) => Err(format!("group name {name:?} contains {c:?}")),
        None => Ok(()),
    }
}

fn parse_from(var: &str, spec: &str) -> Result<FallbackGroups, ConfigError> {
    let mut groups = FallbackGroups::new();
    let mut texts = Vec::new();
    let mut errors = ConfigError::default();
    for text in spec.split([';', '\n']).map(str::trim) {
        if text.is_empty() {
            continue;
        }
        texts.push(text);
        let n = texts.len();
        let (name, list) = match text.split_once('=') {
            Some((name, list)) => (Some(name.trim()), list),
            None => (None, text),
        };
        if list.contains('=') {
            errors.push(var, format!("group {n} {text:?}: more than one '='"));
            continue;
        }
        let models: Vec<&str> = list.split(',').map(str::trim).collect();
        if models.iter().any(|m| m.is_empty()) {
            errors.push(
                var,
                format!("group {n} {text:?}: an empty model id (two commas in a row, or a comma at an end)"),
            );
            continue;
        }
        groups.entries.push(Group {
            name: name.map(str::to_owned),
            models: models.into_iter().map(str::to_owned).collect(),
            route: false,
        });
    }
    if errors.is_empty() {
        // Group numbers count the groups that parsed, which are all of them here.
        groups.check(|i, message| {
            errors.push(var, format!("group {} {:?}: {message}", i + 1, texts[i]))
        });
    }
    errors.into_result(groups)
}
