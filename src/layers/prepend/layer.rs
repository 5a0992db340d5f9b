use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::{Lists, PrependMessages};
use crate::chat::{validate_model_id, ConfigError, Message, PerModel, Role};

/// Applies [`PrependMessages`] to a service. Cheap to clone: the lists are shared.
#[derive(Clone)]
pub struct PrependMessagesLayer {
    pub(super) lists: Lists,
}

impl PrependMessagesLayer {
    /// Starts a builder. Default: no message for any model.
    pub fn builder() -> PrependBuilder {
        PrependBuilder::default()
    }
}

impl<S> Layer<S> for PrependMessagesLayer {
    type Service = PrependMessages<S>;

    fn layer(&self, inner: S) -> PrependMessages<S> {
        PrependMessages::new(inner, self.clone())
    }
}

impl fmt::Debug for PrependMessagesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the messages may hold proprietary prompts.
        f.debug_struct("PrependMessagesLayer")
            .field("models", &self.lists.overrides().count())
            .field(
                "default",
                &self.lists.default_value().as_ref().map_or(0, |m| m.len()),
            )
            .finish()
    }
}

/// Builds a [`PrependMessagesLayer`]; every problem is reported by
/// [`build`](Self::build), together.
#[derive(Default)]
pub struct PrependBuilder {
    default: Vec<Message>,
    models: Vec<(String, Vec<Message>)>,
}

impl PrependBuilder {
    /// Messages for every model without its own list.
    pub fn all_models(mut self, messages: impl IntoIterator<Item = Message>) -> Self {
        self.default = messages.into_iter().collect();
        self
    }

    /// Messages for `model` (a `provider/model` id), instead of the default;
    /// an empty list means none for this model.
    pub fn model(
        mut self,
        model: impl Into<String>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Self {
        self.models
            .push((model.into(), messages.into_iter().collect()));
        self
    }

    /// The lists of `messages`: the default for every model, and per-model
    /// overrides (an empty override means "none for this model"), replacing
    /// those set so far. This is Not Diamond's `model_messages`, global or
    /// per model.
    pub fn per_model(mut self, messages: PerModel<Vec<Message>>) -> Self {
        self.default = messages.default_value().clone();
        self.models = messages
            .overrides()
            .map(|(model, list)| (model.to_owned(), list.clone()))
            .collect();
        self
    }

    /// The layer, or every problem found: malformed model ids, a model given
    /// twice, roles other than system, developer and user.
    pub fn build(self) -> Result<PrependMessagesLayer, ConfigError> {
        let mut errors = ConfigError::default();
        check_roles("prepend.all_models", &self.default, &mut errors);
        let mut lists = PerModel::new(to_list(self.default));
        let mut seen = std::collections::HashSet::new();
        for (model, messages) in self.models {
            let path = format!("prepend.{model}");
            if let Err(e) = validate_model_id(&model) {
                errors.push(&path, e);
            }
            if !seen.insert(model.clone()) {
                errors.push(&path, format!("model {model:?} is given twice"));
            }
            check_roles(&path, &messages, &mut errors);
            lists.set(model, to_list(messages));
        }
        errors.into_result(PrependMessagesLayer {
            lists: Arc::new(lists),
        })
    }
}

impl fmt::Debug for PrependBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrependBuilder")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

fn to_list(messages: Vec<Message>) -> Option<Arc<[Message]>> {
    (!messages.is_empty()).then(|| messages.into())
}

fn check_roles(path: &str, messages: &[Message], errors: &mut ConfigError) {
    for (i, message) in messages.iter().enumerate() {
        if !matches!(message.role, Role::System | Role::Developer | Role::User) {
            errors.push(
                format!("{path}[{i}]"),
                format!(
                    "role {} cannot open a conversation; use system, developer or user",
                    message.role
                ),
            );
        }
    }
}
