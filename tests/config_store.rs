//! Config files: `[store]`, `[limits]` and the `strategy` of weighted
//! routes; every problem with its path, and a Redis URL's password never
//! shown.
#![cfg(all(feature = "toml", feature = "redis"))]

use std::collections::HashMap;
use std::time::Duration;

use llm_fallback::config::RouteConfig;
use llm_fallback::layers::balance::RoutingStrategy;
use llm_fallback::layers::limit::Limits;
use llm_fallback::store::StoreKind;
use llm_fallback::{Config, ConfigError, Stack};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: HashMap<String, String> = (vars.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// Asserts that `e` has a problem at `path` whose message contains `text`.
fn has(e: &ConfigError, path: &str, text: &str) {
    let found = (e.problems().iter()).any(|p| p.path == path && p.message.contains(text));
    assert!(found, "no problem `{path}: ...{text}...` in:\n{e}");
}

const PROVIDERS: &str = r#"
[providers.openai]
kind = "openai"
[providers.azure]
kind = "azure"
endpoint = "https://example.openai.azure.com"
"#;

/// The stack `toml` (with the providers) describes, or every problem.
fn build(toml: &str, vars: &[(&str, &str)]) -> Result<Stack, ConfigError> {
    let config = Config::from_toml_str(&format!("{toml}\n{PROVIDERS}"))?;
    config.validate_with_env(env(vars))?;
    Stack::builder().config(config).env(env(vars)).build()
}

fn problems(toml: &str, vars: &[(&str, &str)]) -> ConfigError {
    build(toml, vars).expect_err("the config is invalid")
}

const SERVED: &str = r#"
[routes]
gpt-4o = { weights = { "azure/gpt-4o" = 3, "openai/gpt-4o" = 1 }, strategy = "lowest_latency", latency_buffer = 0.2 }
mini = ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]
"#;

#[test]
fn store_limits_and_strategies_read_the_same_from_toml_and_json() {
    let toml = Config::from_toml_str(&format!(
        r#"{SERVED}
[limits]
"azure/gpt-4o" = {{ rpm = 600, tpm = 90000 }}
"azure/gpt-4o-mini" = {{ rpm = 1000 }}

[store]
type = "redis"
url_env = "REDIS_URL"
prefix = "gw"
op_timeout = "20ms"
"#
    ))
    .unwrap();
    let json = Config::from_json_str(
        r#"{
        "routes": {
            "gpt-4o": { "weights": { "azure/gpt-4o": 3, "openai/gpt-4o": 1 },
                        "strategy": "lowest_latency", "latency_buffer": 0.2 },
            "mini": ["azure/gpt-4o-mini", "openai/gpt-4o-mini"]
        },
        "limits": { "azure/gpt-4o": { "rpm": 600, "tpm": 90000 }, "azure/gpt-4o-mini": { "rpm": 1000 } },
        "store": { "type": "redis", "url_env": "REDIS_URL", "prefix": "gw", "op_timeout": 0.02 }
    }"#,
    )
    .unwrap();
    assert_eq!(toml, json);
    assert_eq!(toml.store.kind, StoreKind::Redis);
    assert_eq!(
        toml.store.op_timeout.unwrap().get(),
        Duration::from_millis(20)
    );
    assert_eq!(toml.store.prefix.as_deref(), Some("gw"));
    assert_eq!(
        toml.limits["azure/gpt-4o"],
        Limits::default().with_rpm(600).with_tpm(90_000)
    );
    let RouteConfig::Table(route) = &toml.routes["gpt-4o"] else {
        panic!("a table");
    };
    assert_eq!(route.strategy, Some(RoutingStrategy::LowestLatency));
    assert_eq!(route.latency_buffer, Some(0.2));
    // Everything is optional: memory, no limits.
    let empty = Config::from_toml_str("").unwrap();
    assert_eq!(empty.store.kind, StoreKind::Memory);
    assert!(empty.limits.is_empty());
}

#[test]
fn check_output_shows_strategies_limits_and_the_store() {
    let stack = build(
        &format!("{SERVED}\n[limits]\n\"azure/gpt-4o\" = {{ rpm = 600, tpm = 90000 }}\n\"azure/gpt-4o-mini\" = {{ tpm = 5000 }}\n"),
        &[],
    )
    .unwrap();
    let routes = stack.describe_routes();
    assert!(
        routes.contains("gpt-4o: lowest latency first, ties weighted: azure/gpt-4o 75% (600 rpm, 90000 tpm), openai/gpt-4o 25%"),
        "{routes}"
    );
    assert!(
        routes.contains("mini: in order: azure/gpt-4o-mini (5000 tpm), openai/gpt-4o-mini"),
        "{routes}"
    );
    assert_eq!(stack.describe_store(), "memory (this process only)");
}

#[test]
fn a_redis_store_builds_without_a_reachable_server() {
    // Nothing listens on port 1: the connection opens on the first call.
    let stack = build(
        "[store]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:1/3\"\nop_timeout = \"2ms\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        stack.describe_store(),
        r#"redis redis://127.0.0.1:1/3, prefix "llm-fallback", 2ms per operation"#
    );
    let from_env = build(
        "[store]\ntype = \"redis\"\nurl_env = \"REDIS_URL\"\n",
        &[("REDIS_URL", "redis://10.0.0.5:6379")],
    )
    .unwrap();
    assert!(from_env.describe_store().contains("10.0.0.5:6379"));
}

#[test]
fn every_store_problem_is_reported_with_its_path() {
    let e = problems("[store]\ntype = \"redis\"\n", &[]);
    has(&e, "store", "needs `url` or `url_env`");
    let e = problems(
        "[store]\ntype = \"redis\"\nurl = \"redis://h\"\nurl_env = \"R\"\n",
        &[],
    );
    has(&e, "store", "either `url` or `url_env`, not both");
    let e = problems(
        "[store]\ntype = \"redis\"\nurl_env = \"REDIS_URL\"\nprefix = \"\"\nop_timeout = \"0s\"\n",
        &[],
    );
    has(&e, "store.url_env", "REDIS_URL is not set or empty");
    has(&e, "store.prefix", "empty or contains white space");
    has(&e, "store.op_timeout", "longer than zero");
    let e = problems(
        "[store]\ntype = \"redis\"\nurl = \"http://cache:6379\"\n",
        &[],
    );
    has(&e, "store.url", "is not a Redis URL");
    let e = problems("[store]\nurl = \"redis://h\"\nop_timeout = \"5ms\"\n", &[]);
    has(&e, "store.url", "a memory store takes no `url`");
    has(
        &e,
        "store.op_timeout",
        "a memory store takes no `op_timeout`",
    );

    // Shapes serde refuses: the file's own error names the value.
    let e = Config::from_toml_str("[store]\ntype = \"memcached\"\n").unwrap_err();
    assert!(e.to_string().contains("memcached"), "{e}");
    assert!(e.to_string().contains("`redis`"), "{e}");
    let e = Config::from_toml_str("[store]\ntype = \"redis\"\nop_timeout_ms = 5\n").unwrap_err();
    assert!(e.to_string().contains("op_timeout_ms"), "{e}");
    let e = Config::from_toml_str("[store]\nop_timeout = \"5\"\n").unwrap_err();
    assert!(e.to_string().contains("has no unit"), "{e}");
}

#[test]
fn a_redis_password_never_appears_in_problems_debug_or_check_output() {
    const SECRET: &str = "hunter2-s3cret";
    let good = format!("redis://admin:{SECRET}@10.0.0.5:6379/1");
    let toml = format!("[store]\ntype = \"redis\"\nurl = \"{good}\"\n{PROVIDERS}");
    let config = Config::from_toml_str(&toml).unwrap();
    let stack = Stack::builder().config(config.clone()).build().unwrap();
    let shown = format!(
        "{config:?} {:?} {stack:?} {}",
        Stack::builder().config(config.clone()),
        stack.describe_store()
    );
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(stack
        .describe_store()
        .contains("redis://***@10.0.0.5:6379/1"));

    // Bad URLs, written in the file or read from a variable, with the
    // password in odd places.
    for bad in [
        format!("redis://:{SECRET}@cache:notaport"),
        format!("http://:{SECRET}@cache"),
        format!("redis://user:{SECRET}/x@cache:6379"),
        format!("redis://{SECRET}@:6379"),
    ] {
        let e = problems(
            &format!("[store]\ntype = \"redis\"\nurl = \"{bad}\"\n"),
            &[],
        );
        has(&e, "store.url", "is not a Redis URL");
        let e2 = problems(
            "[store]\ntype = \"redis\"\nurl_env = \"REDIS_URL\"\n",
            &[("REDIS_URL", &bad)],
        );
        has(&e2, "store.url_env", "is not a Redis URL");
        let shown = format!("{e} {e:?} {e2} {e2:?}");
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

#[test]
fn route_strategies_are_checked_with_their_paths() {
    let e = Config::from_toml_str(
        "[routes]\nx = { weights = [\"openai/a\"], strategy = \"fastest\" }\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("fastest"), "{e}");
    assert!(e.to_string().contains("least_busy"), "{e}");

    let e = problems(
        r#"
[routes]
ordered = { models = ["openai/a", "openai/b"], strategy = "least_busy", latency_buffer = 0.1 }
busy = { weights = ["openai/a", "openai/b"], strategy = "least_busy", latency_buffer = 0.1 }
nan = { weights = ["openai/a", "openai/b"], strategy = "lowest_latency", latency_buffer = -0.5 }
"#,
        &[],
    );
    has(&e, "routes.ordered.strategy", "only a route with `weights`");
    has(
        &e,
        "routes.ordered.latency_buffer",
        "only a route with `weights`",
    );
    has(
        &e,
        "routes.busy.latency_buffer",
        "only used with strategy = \"lowest_latency\"",
    );
    has(
        &e,
        "routes.nan.latency_buffer",
        "-0.5 is not a finite number of at least 0",
    );
    assert_eq!(e.problems().len(), 4, "{e}");
}

#[test]
fn limits_are_checked_with_their_paths() {
    let e = problems(
        &format!(
            r#"{SERVED}
[limits]
"azure/gpt-4o" = {{ rpm = 0, tpm = 90000 }}
"openai/gpt-4o" = {{ tpm = 0 }}
"openai/o1" = {{ rpm = 10 }}
"groq/llama" = {{ rpm = 10 }}
mini = {{ rpm = 10 }}
"azure/gpt-4o-mini" = {{}}
"#
        ),
        &[],
    );
    has(&e, r#"limits."azure/gpt-4o".rpm"#, "must be at least 1");
    has(&e, r#"limits."openai/gpt-4o".tpm"#, "must be at least 1");
    has(&e, r#"limits."openai/o1""#, "not served by any route");
    has(
        &e,
        r#"limits."groq/llama""#,
        "provider \"groq\", which is not configured",
    );
    has(&e, "limits.mini", "is a route alias");
    has(
        &e,
        r#"limits."azure/gpt-4o-mini""#,
        "neither `rpm` nor `tpm`",
    );
    assert_eq!(e.problems().len(), 6, "{e}");

    let e = Config::from_toml_str("[limits]\n\"openai/a\" = { rpn = 5 }\n").unwrap_err();
    assert!(e.to_string().contains("rpn"), "{e}");
    let e = Config::from_toml_str("[limits]\n\"openai/a\" = { rpm = -5 }\n").unwrap_err();
    assert!(e.to_string().contains("-5"), "{e}");
    // A model served only through `models` or a group takes limits too.
    build(
        "models = [\"openai/o1\"]\n[limits]\n\"openai/o1\" = { rpm = 10 }\n",
        &[],
    )
    .unwrap();
}
