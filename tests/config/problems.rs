//! Every validation problem reported at once, each with its path.

use super::*;

const BROKEN: &str = r#"
models = ["mistral/large"]
model_messages = [{ role = "assistant", content = "Sure!" }]

[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"
base_url = "ftp://example.com"
headers = { "bad header" = "x" }

[providers.azure]
kind = "azure"
base_url = "https://example.com"

[providers."open ai"]
kind = "openai"

[providers._private]
kind = "openai"

[routes]
gpt-4o-mini = { weights = { "azure/gpt-4o" = -1, "openai/gpt-4o" = nan } }
zeros = { weights = { "azure/gpt-4o" = 0 } }
fast = ["openai/gpt-4o-mini", "groq/llama-3.1-8b", "openai/gpt-4o-mini"]
both = { models = ["openai/gpt-4o"], weights = ["openai/gpt-4o"] }
neither = { fallbacks = ["openai/gpt-4o"] }
selfish = ["selfish"]
ping = ["openai/gpt-4o", "pong"]
pong = ["ping"]
"openai/gpt-5" = ["openai/gpt-4o"]
mixed = { weights = ["fast"] }
empty = []

[timeout]
total = 0
attempt = { models = { "azure/gpt-4o" = "0s", "gpt4" = "1s" } }

[retry]
backoff = { default = { factor = 0.5 }, models = { "openai/gpt-4o" = { base = "0ms" } } }
budget = { window = "2m" }

[cooldown]
cooldown = "10s"
failure_ratio = { ratio = 1.5, min_calls = 0 }
growth = { factor = 2, max = "1s" }

[fallback]
groups = [["openai/gpt-4o"]]
groups_from_env = true
context_window_fallbacks = { models = { "nobody/gpt" = ["openai/gpt-4.1"] } }
fallback_on = { sometimes = true }

[server]
listen = "localhost"
api_key_env = "GATEWAY_KEY"
body_limit = 0
"#;

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let config = Config::from_toml_str(BROKEN).unwrap();
    let e = config
        .validate_with_env(env(&[("MODEL_FALLBACK_GROUPS", "a/b,,c/d")]))
        .unwrap_err();
    let cases = [
        (
            "providers.openai.api_key_env",
            "environment variable OPENAI_API_KEY is not set or empty",
        ),
        (
            "providers.openai.base_url",
            "\"ftp://example.com\" is not an http(s) URL",
        ),
        (
            "providers.openai.headers.\"bad header\"",
            "not a valid HTTP header name",
        ),
        ("providers.azure.base_url", "takes `endpoint`"),
        (
            "providers.azure.endpoint",
            "an azure provider needs `endpoint`",
        ),
        ("providers.\"open ai\"", "contains ' '"),
        ("providers._private", "reserved"),
        (
            "routes.gpt-4o-mini.weights",
            "weight for \"azure/gpt-4o\" is negative",
        ),
        (
            "routes.gpt-4o-mini.weights",
            "weight for \"openai/gpt-4o\" is not a finite number",
        ),
        ("routes.zeros.weights", "every weight is zero"),
        (
            "routes.fast[1]",
            "model \"groq/llama-3.1-8b\" names provider \"groq\", which is not configured",
        ),
        ("routes.fast[2]", "\"openai/gpt-4o-mini\" is listed twice"),
        ("routes.both", "either `models` or `weights`, not both"),
        ("routes.neither", "needs `models` (in order) or `weights`"),
        ("routes.selfish[0]", "lists itself"),
        (
            "routes.ping",
            "the routes form a cycle: ping -> pong -> ping",
        ),
        (
            "routes.\"openai/gpt-5\"",
            "reads as a model id of provider \"openai\"",
        ),
        ("routes.mixed.weights", "\"fast\" is a route alias"),
        ("routes.empty", "the route has no model"),
        ("timeout.total", "must be more than zero"),
        (
            "timeout.attempt.models.\"azure/gpt-4o\"",
            "must be more than zero",
        ),
        (
            "timeout.attempt.models.gpt4",
            "is not of the form \"<provider>/<model>\"",
        ),
        ("retry.backoff.factor", "factor 0.5 is invalid"),
        (
            "retry.backoff.models.\"openai/gpt-4o\".base",
            "more than zero",
        ),
        ("retry.budget.window", "between 1 s and 60 s"),
        ("cooldown.failure_ratio.ratio", "ratio 1.5 is not in (0, 1]"),
        ("cooldown.failure_ratio.min_calls", "at least 1"),
        ("cooldown.growth.max", "shorter than the cooldown"),
        ("fallback.groups[0]", "at least two distinct models"),
        ("MODEL_FALLBACK_GROUPS", "an empty model id"),
        (
            "fallback.context_window_fallbacks.models.\"nobody/gpt\"",
            "provider \"nobody\"",
        ),
        (
            "fallback.fallback_on.sometimes",
            "unknown error kind \"sometimes\"",
        ),
        (
            "model_messages[0]",
            "role assistant cannot open a conversation",
        ),
        ("models[0]", "provider \"mistral\""),
        ("server.listen", "\"localhost\" is not an address"),
        (
            "server.api_key_env",
            "environment variable GATEWAY_KEY is not set",
        ),
        ("server.body_limit", "at least 1 byte"),
    ];
    for (path, text) in cases {
        has(&e, path, text);
    }
    // Nothing is reported twice, and nothing but these.
    let lines = problems(&e);
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "{e}");
    assert_eq!(lines.len(), cases.len(), "{e}");
}
