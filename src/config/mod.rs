//! The configuration of a whole stack as plain data: TOML, JSON, or any serde format.
//!
//! A [`Config`] names the providers (endpoints and the environment
//! variables holding their keys), the routes clients may request, and the
//! settings of every layer, globally or per model. [`Stack`](crate::Stack)
//! builds the canonical stack from it; the `gateway` example serves it.
//! [`Config::validate`] reports **every** problem at once, each with its
//! path in the file:
//!
//! ```text
//! routes.gpt-4o.weights: weight for "azure/gpt-4o" is negative
//! providers.azure.endpoint: an azure provider needs `endpoint` (https://<resource>.openai.azure.com)
//! routes.fast[1]: model "groq/llama-3.1-8b" names provider "groq", which is not configured (configured: "azure", "openai")
//! providers.openai.api_key_env: environment variable OPENAI_API_KEY is not set or empty
//! providers.anthropic.keys[1].env_list: environment variable ANTHROPIC_FREE_KEYS is not set or empty
//! ```
//!
//! No problem ever shows a secret: a variable name that is not one (a key
//! or a URL pasted in its place) is refused without being repeated, and a
//! parse error hides the source line and the values of secret-looking keys
//! (`api_key`, `password`, `*_env`, a URL with a password).
//!
//! # The format
//!
//! ```toml
//! seed = 42                                   # seeds weighted draws and jitter
//! models = ["openai/o1"]                      # more model ids to serve besides the routes'
//! model_messages = [{ role = "system", content = "Be brief." }]   # or { default = [...], models = { "id" = [...] } }
//!
//! [providers.openai]                          # the name is the model ids' prefix: openai/gpt-4o
//! kind = "openai"                             # openai (any OpenAI-compatible API) | azure | anthropic
//! base_url = "https://api.openai.com/v1"      # default: the vendor's
//! api_key_env = "OPENAI_API_KEY"              # the variable holding the key; the key is never in the file
//! headers = { "OpenAI-Organization" = "org-123" }
//!
//! [providers.azure]
//! kind = "azure"
//! endpoint = "https://my-resource.openai.azure.com"
//! api_version = "2024-10-21"
//! api_key_env = "AZURE_OPENAI_API_KEY"
//!
//! [providers.anthropic]
//! kind = "anthropic"
//! supports_prefill = true                     # continues a partial answer (default: true for anthropic only)
//! keys = [                                    # several keys instead of api_key_env, rotated on 429 / quota / 401 / 403
//!   { label = "paid", env = "ANTHROPIC_KEY_PAID", tier = 0, weight = 2 },   # one key per variable
//!   { env_list = "ANTHROPIC_FREE_KEYS", tier = 1 },                         # or comma-separated keys
//! ]
//!
//! [routes]                                    # aliases clients request as "model"
//! gpt-4o-mini = ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]             # in order
//! gpt-4o = { weights = { "azure/gpt-4o" = 3, "openai/gpt-4o" = 1 }, fallbacks = ["gpt-4o-mini"] }
//! fast = { weights = ["azure/gpt-4o-mini", "openai/gpt-4o-mini"], strategy = "least_busy" }
//!                                             # weighted (default) | least_busy | lowest_usage | lowest_latency
//!                                             # (+ latency_buffer = 0.1 with lowest_latency)
//!
//! [limits]                                    # per model id, held wherever the model is called
//! "azure/gpt-4o" = { rpm = 600, tpm = 90000 }
//!
//! [store]                                     # where breakers and usage counts live
//! type = "redis"                              # memory (default: this process only) | redis (shared by replicas)
//! url_env = "REDIS_URL"                       # or url = "redis://:password@10.0.0.5:6379/0"
//! prefix = "gateway"                          # keys are "<prefix>:..." (default llm-fallback)
//! op_timeout = "5ms"                          # each store operation's budget; past it, the local view
//!
//! [timeout]
//! total = "60s"                               # the whole call, fallbacks included
//! attempt = { default = "20s", models = { "openai/o1" = "none" } }   # each attempt; streams: to first token
//! headers = "15s"                             # streams: connect + response head (per model too)
//! first_token = { default = "60s", models = { "openai/gpt-4o-mini" = "10s" } }   # streams: to the first content chunk
//! idle = "30s"                                # streams: the longest gap between chunks (per model too)
//! stream_total = "none"                       # streams: the whole stream (per model too)
//! adaptive_first_token = { multiple = 4, floor = "1s" }   # off by default: learn each model's first-token
//!                                             # deadline (multiple x p95 of its recent first tokens), first_token its ceiling
//!
//! [retry]
//! max_retries = { default = 2, models = { "openai/gpt-4o-mini" = 0 } }
//! backoff = { base = "500ms", factor = 2.0, cap = "8s", jitter = "full" }   # or a number: the factor
//! max_retry_after = "10s"
//! budget = { window = "10s", min_per_second = 10, ratio = 0.2 }            # or false
//!
//! [cooldown]
//! consecutive_failures = 5                    # per model too
//! cooldown = "5s"                             # per model too
//! failure_ratio = { ratio = 0.5, window = "30s", min_calls = 20 }          # or false
//! growth = { factor = 2.0, max = "1m" }
//! when_all_cooling = "try_earliest"           # or "fail_fast": routes and direct models alike
//! adaptive_throttle = { k = 2.0, window = "30s", min_requests = 10 }   # or false
//!
//! [fallback]
//! groups = [["azure/gpt-4o", "openai/gpt-4o"]]   # or "azure/gpt-4o,openai/gpt-4o; ..." (MODEL_FALLBACK_GROUPS format)
//! groups_from_env = true                      # also read MODEL_FALLBACK_GROUPS
//! context_window_fallbacks = ["openai/gpt-4.1"]   # or { models = { "gpt-4o-mini" = ["openai/gpt-4.1"] } }
//! content_filter_fallbacks = []               # default: the provider's reason reaches the caller
//! fallback_on = { bad_request = false }       # override the failure-class table per kind
//! max_fallbacks = 3
//! max_upstream_calls = 4                      # per call, retries and fallbacks together
//! recover_streams = { default = false, models = { "gpt-4o-mini" = true } }   # or true: finish cut streams on the next candidate
//!
//! [fallback.hedge]                            # off unless delay is set
//! delay = "800ms"                             # per model too, or "off": race the next candidate of a slow one
//! budget = { window = "10s", min_per_second = 1, ratio = 0.1 }            # hedges as a share of calls
//! learned = { percentile = 0.95, floor = "50ms", ceiling = "10s", min_observations = 20, window = 200 }
//!
//! [server]
//! listen = "127.0.0.1:8080"
//! api_key_env = "GATEWAY_API_KEY"             # clients must send Authorization: Bearer <key>
//! body_limit = 4194304
//! allow_unlisted_models = false
//! shutdown_grace = "20s"
//! metrics = true                              # Prometheus text on GET /metrics
//! metrics_auth = true                         # /metrics needs the client key when one is set
//! metrics_listen = "0.0.0.0:9090"             # serve /metrics there instead of beside the API (default)
//! admin_reload = false                        # POST /admin/reload (behind the client key: needs api_key_env)
//! ```
//!
//! Every setting is optional. Durations are `"250ms"`, `"30s"`, `"2m"`,
//! `"1h"` or a number of seconds. Every per-model setting takes one value or
//! `{ default = ..., models = { "<model id or route alias>" = ... } }` (a
//! model's own entry wins over its route's; without `default` the built-in
//! default stays). A route is a list tried in order, `{ models = [...],
//! fallbacks = [...] }`, or `{ weights = ..., fallbacks = [...] }` (a draw
//! by weight without repeats, then the fallbacks in order); list items may
//! be other routes' aliases. A route is one-way: a request for one of its
//! models directly is not sent to the others (fallback `groups` are
//! two-way). Defaults: no deadline for a whole call, 60 s for each attempt
//! at a complete answer ([`DEFAULT_ATTEMPT`](crate::layers::timeout::DEFAULT_ATTEMPT)); for streams
//! ([`StreamDeadlines`](crate::layers::timeout::StreamDeadlines)) 15 s to the response head,
//! 60 s to the first token, 30 s between chunks, no total; 2 retries with
//! 500 ms × 2 up to 8 s full jitter, `Retry-After` honoured up to 10 s, a
//! budget of 20 % retries, cooldown after 5 consecutive failures (or half of
//! 20 calls in 30 s) for 5 s, no prepended message, fallback on the kinds of
//! the failure-class table, no mid-stream recovery, the weighted strategy,
//! no limits, state in memory; `GET /metrics` served, behind the client key
//! when one is set (see [`server`](crate::server) for its series).
//!
//! A model's `[limits]` (requests and tokens per minute, as its provider
//! enforces them) hold for every call of it: drawn by a weighted route, or
//! called in order by a route or a group, or requested by its id. When a
//! call would exceed one, the model is skipped like a cooling one (no
//! upstream call) and the next candidate is tried; a weighted route does not
//! draw a full model while others have room. A weighted route's `strategy`
//! ranks its available candidates: `least_busy` (fewest calls in flight in
//! this process), `lowest_usage` (most headroom against its limits this
//! minute), `lowest_latency` (moving average; within `latency_buffer` of the
//! fastest counts as equal); ties are drawn by weight. See
//! [`limit`](crate::layers::limit) and [`RoutingStrategy`](crate::layers::balance::RoutingStrategy).
//!
//! `[store]` with `type = "redis"` keeps the breakers (models' and keys') and
//! usage counts on Redis, so that every replica built from the same config
//! skips the model another one cooled down, and limits hold across all of
//! them. The connection opens on the first call: building the stack (or
//! `llm-fallback check`) never needs Redis, and a Redis outage never fails a
//! call (each operation has the `op_timeout` budget, then the process's own
//! view). The URL may hold a password: it is never printed.
//!
//! A provider takes `api_key_env` (one key) or `keys` (several, see
//! [`CredentialConfig`](crate::providers::credentials::CredentialConfig)), not both: each request
//! tries the keys of the lowest tier available, spread by weight, and moves
//! to the next key when one is rate-limited, out of quota or revoked; the
//! keys' cooldowns live in the cooldown layer's store. `recover_streams`
//! is keyed by what requests name (a route alias, a group name or a model
//! of a fallback group); a weighted route recovers among its own candidates
//! first, then its fallbacks. `supports_prefill` applies to every model id
//! of the provider (a weighted route continues partial answers when all its
//! candidates do).
//!
//! TOML ([`Config::from_toml_str`], feature `toml`), JSON
//! ([`Config::from_json_str`]) and YAML ([`Config::from_yaml_str`], feature
//! `yaml`) are read directly, with the same structure and the same problems
//! (every one at once, with its path); [`Config::from_path`] picks by the
//! extension (`.toml`, `.json`, `.yaml`/`.yml`). [`Config::to_toml_string`]
//! writes a config back out. A LiteLLM proxy config runs as it is:
//! [`Config::from_litellm_yaml`] translates it (see [`litellm`]).
//!
//! # What other tools' settings become
//!
//! | elsewhere | here |
//! |---|---|
//! | `notdiamond.init(models=[a, b])` | `routes.<alias> = [a, b]` |
//! | `notdiamond.init(models={a: 0.7, b: 0.3})` | `routes.<alias> = { weights = { a = 0.7, b = 0.3 } }` |
//! | `max_retries=3` / `{model: 3}` | `retry.max_retries = 3` / `{ models = { model = 3 } }` |
//! | `timeout=10.0` / `{model: 10.0}` | `timeout.attempt = 10` / `{ models = { model = 10 } }` |
//! | `backoff=2.0` / `{model: 2.0}` | `retry.backoff = 2.0` (the factor) / `{ models = { model = 2.0 } }` |
//! | `model_messages={model: [...]}` | `model_messages = { models = { model = [...] } }` |
//! | LiteLLM `model_list` entries sharing a `model_name` | a weighted route named `model_name`, one candidate per deployment (each deployment a provider) |
//! | LiteLLM `fallbacks=[{a: [b, c]}]` | `routes.a = { weights = ..., fallbacks = ["b", "c"] }` (or `[..a's models, "b", "c"]`) |
//! | LiteLLM `context_window_fallbacks=[{a: [b]}]` | `fallback.context_window_fallbacks = { models = { a = ["b"] } }` |
//! | LiteLLM `content_policy_fallbacks` | `fallback.content_filter_fallbacks` |
//! | LiteLLM `num_retries`, `timeout`, `cooldown_time`, `allowed_fails` | `retry.max_retries`, `timeout.total` and `timeout.attempt`, `cooldown.cooldown`, `cooldown.consecutive_failures` (`allowed_fails` + 1) |
//! | LiteLLM `max_fallbacks` | `fallback.max_fallbacks` |
//! | LiteLLM `rpm` / `tpm` of a `model_list` entry | `limits."<provider>/<model>" = { rpm = .., tpm = .. }` |
//! | LiteLLM `routing_strategy` (`simple-shuffle`, `least-busy`, `usage-based-routing-v2`, `latency-based-routing`) | `routes.<alias>.strategy` (`weighted`, `least_busy`, `lowest_usage`, `lowest_latency`) |
//! | LiteLLM `redis_url` / `redis_host`, `redis_password` | `store = { type = "redis", url_env = "REDIS_URL" }` |
//! | LiteLLM `stream_timeout` | `timeout.first_token` (and `timeout.idle`, `timeout.stream_total`) |
//! | several keys of one vendor (a LiteLLM deployment per key, a key-rotating proxy) | `providers.<name>.keys = [{ env = "..." }, { env_list = "...", tier = 1 }]` |
//! | `MODEL_FALLBACK_GROUPS="a,b; fast=c,d"` | `fallback.groups_from_env = true`, or `fallback.groups = "a,b; fast=c,d"` |
//!
//! A whole LiteLLM `config.yaml` also runs as it is
//! ([`Config::from_litellm_yaml`], `llm-fallback serve --litellm-config`);
//! docs/LITELLM.md has its full mapping and where behaviour differs.
//!
//! A kind's dedicated route keyed by a model id applies where the fallback
//! layer calls that model (requested directly, or in an ordered route or a
//! group); for the models of a weighted route, key it by the route's alias.
//!
//! # Example
//!
//! ```
//! use llm_fallback::Config;
//!
//! let config = Config::from_json_str(r#"{
//!     "providers": { "openai": { "kind": "openai" }, "azure": { "kind": "azure" } },
//!     "routes": { "gpt-4o": { "weights": { "azure/gpt-4o": -1, "openai/gpt-4o": 1 } } }
//! }"#).unwrap();
//! let e = config.validate().unwrap_err().to_string();
//! assert!(e.contains("providers.azure.endpoint: an azure provider needs `endpoint`"), "{e}");
//! assert!(e.contains(r#"routes.gpt-4o.weights: weight for "azure/gpt-4o" is negative"#), "{e}");
//! ```

mod check;
mod ctx;
mod describe;
mod expand;
mod fallback;
mod limits;
mod messages;
mod problems;
mod providers;
mod recovery;
mod redact;
mod routes;
mod server;
mod types;
#[cfg(feature = "yaml")]
mod yaml;

#[cfg(feature = "yaml")]
pub mod litellm;
#[cfg(feature = "toml")]
mod print;

use std::path::Path;

pub use self::server::ServerConfig;
pub use self::types::{Config, ProviderConfig, ProviderKind, RouteConfig, RouteTable};
pub use crate::settings::{HumanDuration, PerModelSetting, Switch, TimeLimit};

pub(crate) use self::check::check;
pub(crate) use self::providers::CheckedProvider;
pub(crate) use self::server::ServerSetup;

use crate::chat::ConfigError;

impl Config {
    /// Reads a config in TOML.
    #[cfg(feature = "toml")]
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            // Every problem at once, not only serde's first.
            let tree = toml::from_str::<toml::Table>(text)
                .ok()
                .map(toml::Value::Table);
            (tree.and_then(problems::collect))
                .unwrap_or_else(|| ConfigError::new("", redact::toml_error(text, &e)))
        })
    }

    /// Reads a config in JSON.
    pub fn from_json_str(text: &str) -> Result<Config, ConfigError> {
        serde_json::from_str(text).map_err(|e| {
            let tree = serde_json::from_str::<serde_json::Value>(text).ok();
            (tree.and_then(problems::collect))
                .unwrap_or_else(|| ConfigError::new("", redact::json_error(&e)))
        })
    }

    /// Reads a config file: `.toml` (feature `toml`), `.json`, or `.yaml` /
    /// `.yml` (feature `yaml`).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&shown, format!("cannot read the file: {e}")))?;
        let in_file = |e: ConfigError| {
            let mut out = ConfigError::default();
            for p in e.problems() {
                match p.path.as_str() {
                    "" => out.push(&shown, &p.message),
                    at => out.push(&shown, format!("{at}: {}", p.message)),
                }
            }
            out
        };
        match path.extension().and_then(|e| e.to_str()) {
            #[cfg(feature = "toml")]
            Some("toml") => Self::from_toml_str(&text).map_err(in_file),
            Some("json") => Self::from_json_str(&text).map_err(in_file),
            #[cfg(feature = "yaml")]
            Some("yaml" | "yml") => Self::from_yaml_str(&text).map_err(|e| {
                let mut e = in_file(e);
                if text.contains("model_list") {
                    e.push(
                        &shown,
                        "this looks like a LiteLLM proxy config: run it with --litellm-config",
                    );
                }
                e
            }),
            _ => Err(ConfigError::new(
                shown,
                "unknown file type: use .toml, .json or .yaml (a LiteLLM config.yaml: --litellm-config)",
            )),
        }
    }
}
