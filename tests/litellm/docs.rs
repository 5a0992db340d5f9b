//! LiteLLM's own documented example configs, and the native configs they
//! translate to.

use super::*;

use llm_fallback::layers::limit::Limits;

/// docs.litellm.ai, "Proxy - Fallbacks, Retries": three zephyr-beta
/// deployments on Hugging Face (not a supported provider), OpenAI models
/// with a key written in the file, and the reliability settings.
pub(crate) const RELIABILITY: &str = r#"
model_list:
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8001
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8002
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8003
  - model_name: gpt-3.5-turbo
    litellm_params:
        model: gpt-3.5-turbo
        api_key: <my-openai-key>
  - model_name: gpt-3.5-turbo-16k
    litellm_params:
        model: gpt-3.5-turbo-16k
        api_key: <my-openai-key>

litellm_settings:
  num_retries: 3 # retry call 3 times on each model_name (e.g. zephyr-beta)
  request_timeout: 10 # raise Timeout error if call takes longer than 10s. Sets litellm.request_timeout
  fallbacks: [{"zephyr-beta": ["gpt-3.5-turbo"]}] # fallback to gpt-3.5-turbo if call fails num_retries
  context_window_fallbacks: [{"zephyr-beta": ["gpt-3.5-turbo-16k"]}, {"gpt-3.5-turbo": ["gpt-3.5-turbo-16k"]}] # fallback to gpt-3.5-turbo-16k if context window error
  allowed_fails: 3 # cooldown model if it fails > 1 call in a minute.
"#;

#[test]
fn the_reliability_example_translates_and_names_what_it_cannot_run() {
    let t = translate(RELIABILITY, &[]);
    let expected = native(
        r#"
        [providers.openai]
        kind = "openai"
        api_key_env = "LITELLM_KEY_OPENAI"
        [routes]
        "gpt-3.5-turbo" = ["openai/gpt-3.5-turbo"]
        "gpt-3.5-turbo-16k" = ["openai/gpt-3.5-turbo-16k"]
        [timeout]
        attempt = "10s"
        [retry]
        max_retries = 3
        [cooldown]
        consecutive_failures = 4     # LiteLLM cools after more than allowed_fails
        failure_ratio = false
        [fallback]
        context_window_fallbacks = { models = { "gpt-3.5-turbo" = ["gpt-3.5-turbo-16k"] } }
        "#,
    );
    assert_eq!(t.config, expected);
    let w = &t.warnings;
    for i in 0..3 {
        let path = format!("model_list[{i}].litellm_params.model");
        assert!(
            w.mentions(&path, "provider \"huggingface\" is not supported"),
            "{w}"
        );
    }
    assert!(
        w.mentions(
            "litellm_settings.fallbacks[0].zephyr-beta",
            "names no model group"
        ),
        "{w}"
    );
    assert!(
        w.mentions(
            "litellm_settings.context_window_fallbacks[0].zephyr-beta",
            "names no model group"
        ),
        "{w}"
    );
    assert!(
        w.mentions("model_list[3].litellm_params.api_key", "LITELLM_KEY_OPENAI"),
        "{w}"
    );
    // The key written twice is one provider, its key served from the file.
    let lookup = t.env(env(&[]));
    assert_eq!(
        lookup("LITELLM_KEY_OPENAI").as_deref(),
        Some("<my-openai-key>")
    );
    assert!(!w.to_string().contains("<my-openai-key>"), "{w}");
    assert!(
        w.to_string()
            .starts_with("6 settings of the LiteLLM config"),
        "{w}"
    );
}

/// docs.litellm.ai, "Context Window Fallbacks (Pre-Call Checks + Fallbacks)".
pub(crate) const CONTEXT_WINDOW: &str = r#"
router_settings:
  enable_pre_call_checks: true # 1. Enable pre-call checks

model_list:
  - model_name: gpt-3.5-turbo-small
    litellm_params:
      model: azure/chatgpt-v-2
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      api_version: "2023-07-01-preview"
    model_info:
      base_model: azure/gpt-4-1106-preview # 2. 👈 (azure-only) SET BASE MODEL

  - model_name: gpt-3.5-turbo-large
    litellm_params:
      model: gpt-3.5-turbo-1106
      api_key: os.environ/OPENAI_API_KEY

  - model_name: claude-opus
    litellm_params:
      model: claude-3-opus-20240229
      api_key: os.environ/ANTHROPIC_API_KEY

litellm_settings:
  context_window_fallbacks: [{"gpt-3.5-turbo-small": ["gpt-3.5-turbo-large", "claude-opus"]}]
"#;

#[test]
fn the_context_window_example_routes_oversized_prompts_to_the_larger_groups() {
    let t = translate(
        CONTEXT_WINDOW,
        &[("AZURE_API_BASE", "https://my-endpoint.openai.azure.com")],
    );
    let expected = native(
        r#"
        [providers.azure]
        kind = "azure"
        endpoint = "https://my-endpoint.openai.azure.com"
        api_version = "2023-07-01-preview"
        api_key_env = "AZURE_API_KEY"
        [providers.openai]
        kind = "openai"
        api_key_env = "OPENAI_API_KEY"
        [providers.anthropic]
        kind = "anthropic"
        api_key_env = "ANTHROPIC_API_KEY"
        [routes]
        "gpt-3.5-turbo-small" = ["azure/chatgpt-v-2"]
        "gpt-3.5-turbo-large" = ["openai/gpt-3.5-turbo-1106"]
        claude-opus = ["anthropic/claude-3-opus-20240229"]
        [cooldown]                   # LiteLLM's default rule: half of a minute's calls, at least 5
        failure_ratio = { ratio = 0.5, window = "1m", min_calls = 5 }
        [fallback.context_window_fallbacks.models]
        "gpt-3.5-turbo-small" = ["gpt-3.5-turbo-large", "claude-opus"]
        "#,
    );
    assert_eq!(t.config, expected);
    let w = &t.warnings;
    assert!(
        w.mentions("router_settings.enable_pre_call_checks", "not supported"),
        "{w}"
    );
    assert!(w.mentions("model_list[0].model_info", "ignored"), "{w}");
    assert_eq!(w.len(), 2, "{w}");

    // os.environ/ of a value that is not secret must be set.
    let e = Config::from_litellm_yaml_with_env(CONTEXT_WINDOW, env(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "model_list[0].litellm_params.api_base: environment variable AZURE_API_BASE is not set or empty"
    );
}

/// docs.litellm.ai, "Proxy - Load Balancing": Azure deployments of one
/// group with their rpm, the usage-based strategy, and Redis shared by
/// several proxies (the keys as `os.environ/` instead of placeholders).
pub(crate) const AZURE_BALANCE_REDIS: &str = r#"
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/gpt-turbo-small-eu
      api_base: https://my-endpoint-europe-berri-992.openai.azure.com/
      api_key: os.environ/AZURE_API_KEY_EU
      rpm: 6      # Rate limit for this deployment: in requests per minute (rpm)
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/gpt-turbo-small-ca
      api_base: https://my-endpoint-canada-berri992.openai.azure.com/
      api_key: os.environ/AZURE_API_KEY_CA
      rpm: 6
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/gpt-turbo-large
      api_base: https://openai-france-1234.openai.azure.com/
      api_key: os.environ/AZURE_API_KEY_FR
      rpm: 1440
      tpm: 240000

router_settings:
  routing_strategy: usage-based-routing-v2
  redis_host: os.environ/REDIS_HOST
  redis_password: os.environ/REDIS_PASSWORD
  redis_port: os.environ/REDIS_PORT
  model_group_alias: {"gpt-4": "gpt-3.5-turbo"} # all requests with `gpt-4` will be routed to models with `gpt-3.5-turbo`
"#;

#[test]
fn azure_deployments_balance_by_rpm_under_their_limits_with_state_on_redis() {
    let vars = [
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", "6379"),
        ("REDIS_PASSWORD", "s3cret/pw"),
    ];
    let t = translate(AZURE_BALANCE_REDIS, &vars);
    let expected = native(
        r#"
        [providers.azure]
        kind = "azure"
        endpoint = "https://my-endpoint-europe-berri-992.openai.azure.com/"
        api_key_env = "AZURE_API_KEY_EU"
        [providers.azure-2]
        kind = "azure"
        endpoint = "https://my-endpoint-canada-berri992.openai.azure.com/"
        api_key_env = "AZURE_API_KEY_CA"
        [providers.azure-3]
        kind = "azure"
        endpoint = "https://openai-france-1234.openai.azure.com/"
        api_key_env = "AZURE_API_KEY_FR"
        [routes]
        "gpt-4" = ["gpt-3.5-turbo"]
        [routes."gpt-3.5-turbo"]
        weights = { "azure/gpt-turbo-small-eu" = 6, "azure-2/gpt-turbo-small-ca" = 6, "azure-3/gpt-turbo-large" = 1440 }
        strategy = "lowest_usage"
        [limits]
        "azure/gpt-turbo-small-eu" = { rpm = 6 }
        "azure-2/gpt-turbo-small-ca" = { rpm = 6 }
        "azure-3/gpt-turbo-large" = { rpm = 1440, tpm = 240000 }
        [cooldown]
        failure_ratio = { ratio = 0.5, window = "1m", min_calls = 5 }
        [fallback]
        max_upstream_calls = 9       # 3 candidates, each with its 2 retries (native default)
        [store]
        type = "redis"
        url_env = "LITELLM_REDIS_URL"
        "#,
    );
    assert_eq!(t.config, expected);
    assert_eq!(
        t.config.limits.0["azure-3/gpt-turbo-large"],
        Limits::default().with_rpm(1440).with_tpm(240_000)
    );
    // The URL is made from the variables when the stack looks it up.
    let lookup = t.env(env(&vars));
    assert_eq!(
        lookup("LITELLM_REDIS_URL").as_deref(),
        Some("redis://:s3cret%2Fpw@127.0.0.1:6379")
    );
    assert!(
        t.warnings.mentions("router_settings", "LITELLM_REDIS_URL"),
        "{}",
        t.warnings
    );
    assert!(!t.warnings.to_string().contains("s3cret"));
    assert!(!format!("{t:?}").contains("s3cret"));
    // It builds, the Redis connection opening on the first call only.
    llm_fallback::Stack::builder()
        .config(t.config.clone())
        .env(t.env(env(&[
            ("AZURE_API_KEY_EU", "k1"),
            ("AZURE_API_KEY_CA", "k2"),
            ("AZURE_API_KEY_FR", "k3"),
            ("REDIS_HOST", "127.0.0.1"),
            ("REDIS_PORT", "6379"),
            ("REDIS_PASSWORD", "pw"),
        ])))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
}

/// LiteLLM's `proxy_server_config.yaml`: a deployment's own rpm, timeout
/// and stream timeout, and the settings sections it does not need here.
pub(crate) const PROXY_SERVER_CONFIG: &str = r#"
model_list:
  - model_name: gpt-3.5-turbo-large
    litellm_params:
      model: "gpt-3.5-turbo-1106"
      api_key: os.environ/OPENAI_API_KEY
      rpm: 480
      timeout: 300
      stream_timeout: 60
      max_retries: 1
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_key: fake-key
      api_base: https://exampleopenaiendpoint-production.up.railway.app/
litellm_settings:
  drop_params: True
  success_callback: ["prometheus"]
  default_fallbacks: ["gpt-3.5-turbo-large"]
  cache: true
  cache_params:
    type: redis
router_settings:
  routing_strategy: usage-based-routing-v2
  redis_host: os.environ/REDIS_HOST
  redis_password: os.environ/REDIS_PASSWORD
  redis_port: os.environ/REDIS_PORT
  enable_pre_call_checks: true
  retry_policy:
    RateLimitErrorRetries: 3
    InternalServerErrorRetries: 3
    AuthenticationErrorRetries: 0
    TimeoutErrorRetries: 2
general_settings:
  master_key: sk-1234 # [OPTIONAL] Use to enforce auth on proxy. See - https://docs.litellm.ai/docs/proxy/virtual_keys
  store_model_in_db: True
  proxy_budget_rescheduler_min_time: 60
  database_url: postgresql://user:pw@host:5432/db
"#;

#[test]
fn a_deployments_own_settings_are_keyed_by_its_model_id_and_the_rest_is_one_warning() {
    let vars = [("REDIS_HOST", "localhost"), ("REDIS_PORT", "6379")];
    let t = translate(PROXY_SERVER_CONFIG, &vars);
    let c = &t.config;
    let id = "openai/gpt-3.5-turbo-1106";
    assert_eq!(c.limits.0[id].rpm, Some(480));
    assert_eq!(
        c.timeout.attempt.models[id].get(),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(
        c.timeout.first_token.models[id].get(),
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(c.retry.max_retries.models[id], 1);
    // retry_policy: the kinds retried here set max_retries.
    assert_eq!(c.retry.max_retries.default, Some(3));
    // default_fallbacks go to every other group.
    assert_eq!(
        c.routes["fake-openai-endpoint"],
        llm_fallback::config::RouteConfig::Table(native_table(
            r#"{"models": ["openai-2/fake"], "fallbacks": ["gpt-3.5-turbo-large"]}"#
        ))
    );
    assert_eq!(c.server.api_key_env.as_deref(), Some("LITELLM_MASTER_KEY"));
    let w = &t.warnings;
    for path in [
        "litellm_settings.drop_params",
        "litellm_settings.success_callback",
        "litellm_settings.cache",
        "litellm_settings.cache_params",
        "router_settings.enable_pre_call_checks",
        "general_settings.store_model_in_db",
        "general_settings.proxy_budget_rescheduler_min_time",
        "general_settings.database_url",
    ] {
        assert!(w.mentions(path, "not supported"), "{path} in:\n{w}");
    }
    assert!(
        w.mentions(
            "router_settings.retry_policy.TimeoutErrorRetries",
            "never retried"
        ),
        "{w}"
    );
    assert!(
        !w.to_string().contains("user:pw") && !w.to_string().contains("sk-1234"),
        "{w}"
    );
    let lookup = t.env(env(&[]));
    assert_eq!(lookup("LITELLM_MASTER_KEY").as_deref(), Some("sk-1234"));
}

fn native_table(json: &str) -> llm_fallback::config::RouteTable {
    serde_json::from_str(json).unwrap()
}

#[test]
fn malformed_litellm_configs_report_every_problem_with_its_path() {
    let e = Config::from_litellm_yaml_with_env(
        r#"
model_list:
  - model_name: a
    litellm_params: { model: openai/x, rpm: many, timeout: -1, weight: -2 }
  - litellm_params: { model: openai/y }
  - model_name: c
router_settings:
  num_retries: [1]
  fallbacks: 3
"#,
        env(&[]),
    )
    .unwrap_err();
    let all: Vec<String> = (e.problems().iter())
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    for expected in [
        "model_list[0].litellm_params.rpm: expected a number, found \"many\"",
        "model_list[0].litellm_params.timeout: -1 seconds is negative or too large",
        "model_list[0].litellm_params.weight: weight -2 is negative",
        "model_list[1].model_name: every deployment needs a `model_name`",
        "model_list[2].litellm_params: every deployment needs `litellm_params` with `model`",
        "router_settings.num_retries: expected a number, found a list",
        "router_settings.fallbacks: expected a list, found a number",
    ] {
        assert!(
            all.iter().any(|p| p == expected),
            "{expected} missing from:\n{e}"
        );
    }
    assert_eq!(all.len(), 7, "{e}");
    // A key pasted where a name goes is not repeated.
    let t = translate(
        "model_list:\n  - model_name: a\n    litellm_params: { model: openai/x }\n    sk-live-0123456789abcdef0123: pasted\n",
        &[],
    );
    assert!(
        t.warnings
            .mentions("model_list[0].***", "not a deployment setting"),
        "{}",
        t.warnings
    );
    assert!(!t.warnings.to_string().contains("sk-live"));
    let e = Config::from_litellm_yaml_with_env("model_list: [\n", env(&[])).unwrap_err();
    assert!(e.to_string().starts_with("invalid YAML"), "{e}");
    let e = Config::from_litellm_yaml_with_env("router_settings: {}\n", env(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "model_list: a LiteLLM config needs a `model_list`"
    );
}

/// docs.litellm.ai, "Fallbacks (Provider Failover)", Quick Start, with
/// `num_retries` set as the page's settings table allows.
pub(crate) const ROUTER_FALLBACKS: &str = r#"
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/<your-deployment-name>
      api_base: <your-azure-endpoint>
      api_key: <your-azure-api-key>
      rpm: 6      # Rate limit for this deployment: in requests per minute (rpm)
  - model_name: gpt-4
    litellm_params:
      model: azure/gpt-4-ca
      api_base: https://my-endpoint-canada-berri992.openai.azure.com/
      api_key: <your-azure-api-key>
      rpm: 6
router_settings:
  fallbacks: [{"gpt-3.5-turbo": ["gpt-4"]}]
  num_retries: 3
"#;

#[test]
fn router_fallbacks_follow_the_retries_with_calls_to_spare() {
    let t = translate(ROUTER_FALLBACKS, &[]);
    let expected = native(
        r#"
        [providers.azure]
        kind = "azure"
        endpoint = "<your-azure-endpoint>"
        api_key_env = "LITELLM_KEY_AZURE"
        [providers.azure-2]
        kind = "azure"
        endpoint = "https://my-endpoint-canada-berri992.openai.azure.com/"
        api_key_env = "LITELLM_KEY_AZURE"
        [routes]
        "gpt-3.5-turbo" = { models = ["azure/<your-deployment-name>"], fallbacks = ["gpt-4"] }
        gpt-4 = ["azure-2/gpt-4-ca"]
        [limits]
        "azure/<your-deployment-name>" = { rpm = 6 }
        "azure-2/gpt-4-ca" = { rpm = 6 }
        [retry]
        max_retries = 3
        [cooldown]
        failure_ratio = { ratio = 0.5, window = "1m", min_calls = 5 }
        [fallback]
        max_upstream_calls = 8       # 4 calls to each group: the fallback is never starved
        "#,
    );
    assert_eq!(t.config, expected);
    // The placeholders are what they are: the check names the bad endpoint.
    let e = t.config.validate_with_env(t.env(env(&[]))).unwrap_err();
    assert!(e.to_string().contains("providers.azure.endpoint"), "{e}");
}

/// docs.litellm.ai, "Timeouts": the router's for the whole call, and a
/// deployment's own `timeout` and `stream_timeout`.
const TIMEOUTS: &str = r#"
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/chatgpt-v-2
      api_key: os.environ/AZURE_API_KEY
      api_version: os.environ/AZURE_API_VERSION
      api_base: os.environ/AZURE_API_BASE
      timeout: 300 # sets a 5 minute timeout
      stream_timeout: 30 # sets a 30s timeout for streaming calls
router_settings:
  timeout: 30 # sets a 30s timeout for the entire call
litellm_settings:
  request_timeout: 600
"#;

#[test]
fn the_routers_timeout_bounds_the_call_and_each_attempt_below_a_deployments_own() {
    let t = translate(
        TIMEOUTS,
        &[
            ("AZURE_API_BASE", "https://example.openai.azure.com"),
            ("AZURE_API_VERSION", "2024-02-01"),
        ],
    );
    let expected = native(
        r#"
        [providers.azure]
        kind = "azure"
        endpoint = "https://example.openai.azure.com"
        api_version = "2024-02-01"
        api_key_env = "AZURE_API_KEY"
        [routes]
        "gpt-3.5-turbo" = ["azure/chatgpt-v-2"]
        [timeout]
        total = "30s"
        attempt = { default = "30s", models = { "azure/chatgpt-v-2" = "5m" } }
        first_token = { models = { "azure/chatgpt-v-2" = "30s" } }
        [cooldown]
        failure_ratio = { ratio = 0.5, window = "1m", min_calls = 5 }
        "#,
    );
    assert_eq!(t.config, expected);
    assert!(t.warnings.is_empty(), "{}", t.warnings);
}

#[test]
fn the_example_litellm_config_is_honoured_whole_and_builds() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/litellm.yaml"
    ))
    .unwrap();
    let t = translate(&yaml, &[]);
    assert!(t.warnings.is_empty(), "{}", t.warnings);
    let expected = native(
        r#"
        [providers.azure]
        kind = "azure"
        endpoint = "https://my-eu-resource.openai.azure.com"
        api_version = "2024-10-21"
        api_key_env = "AZURE_EU_API_KEY"
        [providers.azure-2]
        kind = "azure"
        endpoint = "https://my-us-resource.openai.azure.com"
        api_version = "2024-10-21"
        api_key_env = "AZURE_US_API_KEY"
        [providers.openai]
        kind = "openai"
        api_key_env = "OPENAI_API_KEY"
        [providers.anthropic]
        kind = "anthropic"
        api_key_env = "ANTHROPIC_API_KEY"
        [routes]
        "gpt-4o" = { weights = { "azure/gpt-4o-eu" = 600, "azure-2/gpt-4o-us" = 300 }, fallbacks = ["openai/gpt-4o", "claude"] }
        "gpt-4.1" = ["openai/gpt-4.1"]
        claude = ["anthropic/claude-3-5-sonnet-20240620"]
        [limits]
        "azure/gpt-4o-eu" = { rpm = 600, tpm = 90000 }
        "azure-2/gpt-4o-us" = { rpm = 300 }
        [timeout]
        total = "1m"
        attempt = { default = "1m", models = { "openai/gpt-4.1" = "2m" } }
        first_token = { models = { "anthropic/claude-3-5-sonnet-20240620" = "20s" } }
        [retry]
        max_retries = 2
        [cooldown]
        consecutive_failures = 4
        cooldown = "30s"
        failure_ratio = false
        [fallback]
        context_window_fallbacks = { models = { "gpt-4o" = ["gpt-4.1"] } }
        content_filter_fallbacks = { models = { "gpt-4o" = ["claude"] } }
        max_upstream_calls = 12      # 4 candidates, each with its 2 retries
        [server]
        api_key_env = "GATEWAY_API_KEY"
        "#,
    );
    assert_eq!(t.config, expected);
    let keys = [
        ("AZURE_EU_API_KEY", "k1"),
        ("AZURE_US_API_KEY", "k2"),
        ("OPENAI_API_KEY", "k3"),
        ("ANTHROPIC_API_KEY", "k4"),
        ("GATEWAY_API_KEY", "k5"),
    ];
    t.config.validate_with_env(t.env(env(&keys))).unwrap();
}

#[test]
fn an_openai_organization_becomes_its_header() {
    let t = translate(
        "model_list:\n  - model_name: gpt-4\n    litellm_params:\n      model: openai/gpt-4\n      \
         api_key: os.environ/OPENAI_API_KEY\n      organization: os.environ/OPENAI_ORG_ID # Optional\n",
        &[("OPENAI_ORG_ID", "org-123")],
    );
    assert_eq!(
        t.config.providers["openai"].headers["OpenAI-Organization"],
        "org-123"
    );
    assert!(t.warnings.is_empty(), "{}", t.warnings);
}
