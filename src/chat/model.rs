//! Model ids: `<provider>/<model>`.

use crate::chat::config_error::ConfigError;

/// Splits `provider/model` at the first `/`. `None` when either side is empty
/// or there is no `/`. The model part may itself contain `/`
/// (`openrouter/meta-llama/llama-3-70b`).
pub fn split_model_id(id: &str) -> Option<(&str, &str)> {
    let (provider, model) = id.split_once('/')?;
    if provider.is_empty() || model.is_empty() {
        None
    } else {
        Some((provider, model))
    }
}

/// Checks that `id` is a well-formed `provider/model` id; the error names it.
pub fn validate_model_id(id: &str) -> Result<(), String> {
    if id.chars().any(char::is_whitespace) {
        return Err(format!("model id {id:?} contains white space"));
    }
    match split_model_id(id) {
        None => Err(format!(
            "model id {id:?} is not of the form \"<provider>/<model>\" (e.g. \"openai/gpt-4o-mini\")"
        )),
        Some((provider, _)) => validate_provider_name(provider)
            .map_err(|e| format!("model id {id:?}: {e}")),
    }
}

/// Checks a provider name: letters, digits, `-`, `_`, `.`.
pub fn validate_provider_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("provider name is empty".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "provider name {name:?} contains {c:?}; use letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

/// Validates a list of model ids, reporting each bad one under `path`.
#[allow(dead_code)] // used by the layers' builders
pub(crate) fn validate_all<'a>(
    path: &str,
    ids: impl IntoIterator<Item = &'a str>,
    errors: &mut ConfigError,
) {
    for id in ids {
        if let Err(e) = validate_model_id(id) {
            errors.push(path, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_slash() {
        assert_eq!(split_model_id("openai/gpt-4o"), Some(("openai", "gpt-4o")));
        assert_eq!(
            split_model_id("openrouter/meta-llama/llama-3"),
            Some(("openrouter", "meta-llama/llama-3"))
        );
        assert_eq!(split_model_id("gpt-4o"), None);
        assert_eq!(split_model_id("/gpt-4o"), None);
        assert_eq!(split_model_id("openai/"), None);
    }

    #[test]
    fn malformed_ids_are_named_in_the_error() {
        let e = validate_model_id("gpt 4o").unwrap_err();
        assert!(e.contains("\"gpt 4o\""), "{e}");
        let e = validate_model_id("gpt-4o").unwrap_err();
        assert!(e.contains("<provider>/<model>"), "{e}");
        let e = validate_model_id("open:ai/gpt-4o").unwrap_err();
        assert!(e.contains("':'"), "{e}");
        assert!(validate_model_id("azure-eu/gpt-4o").is_ok());
    }
}
