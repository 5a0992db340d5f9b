//! Checking `model_messages`: each model's own leading messages.

use super::ctx::Ctx;
use crate::chat::{Message, PerModel, Role};
use crate::settings::key_path;

impl Ctx<'_> {
    pub(crate) fn messages(&mut self) -> PerModel<Vec<Message>> {
        let config = self.config;
        let messages = self.per_model("model_messages", &config.model_messages, Vec::new());
        let check = |ctx: &mut Self, path: &str, list: &[Message]| {
            for (i, m) in list.iter().enumerate() {
                if !matches!(m.role, Role::System | Role::Developer | Role::User) {
                    ctx.errors.push(
                        format!("{path}[{i}]"),
                        format!(
                            "role {} cannot open a conversation; use system, developer or user",
                            m.role
                        ),
                    );
                }
            }
        };
        check(self, "model_messages", messages.default_value());
        for (model, list) in messages.overrides() {
            check(
                self,
                &format!("model_messages.models.{}", key_path(model)),
                list,
            );
        }
        messages
    }
}
