//! A config with several typos reports every one of them, with its path, in
//! one run (serde alone stops at the first).

use llm_fallback::Config;

const TYPOS: &str = r#"
[providers.openai]
kind = "openai"
api_key = "OPENAI_API_KEY"

[retry]
max_retry = 2

[timeout]
atempt = "20s"
"#;

fn problems(e: &llm_fallback::ConfigError) -> Vec<String> {
    e.problems()
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect()
}

#[cfg(feature = "toml")]
#[test]
fn three_typos_in_toml_are_three_problems_in_one_run() {
    let e = Config::from_toml_str(TYPOS).unwrap_err();
    let all = problems(&e);
    assert_eq!(all.len(), 3, "{e}");
    for (path, key) in [
        ("providers.openai.api_key: ", "unknown field `api_key`"),
        ("retry.max_retry: ", "unknown field `max_retry`"),
        ("timeout.atempt: ", "unknown field `atempt`"),
    ] {
        assert!(
            all.iter().any(|p| p.starts_with(path) && p.contains(key)),
            "{path}{key} missing from:\n{e}"
        );
    }
}

#[test]
fn unknown_keys_and_wrong_types_in_json_are_all_reported() {
    let e = Config::from_json_str(
        r#"{
            "providers": { "openai": { "kind": "openai", "api_key": "x" },
                           "azure": { "kind": "azure", "endpoint": 5 } },
            "retry": { "max_retries": "three" },
            "seed": 7
        }"#,
    )
    .unwrap_err();
    let all = problems(&e);
    assert_eq!(all.len(), 3, "{e}");
    assert!(
        all.iter()
            .any(|p| p.starts_with("providers.openai.api_key: unknown field")),
        "{e}"
    );
    assert!(
        all.iter()
            .any(|p| p.starts_with("providers.azure.endpoint: invalid type")),
        "{e}"
    );
    assert!(
        all.iter().any(|p| p.starts_with("retry.max_retries: ")),
        "{e}"
    );
}

#[cfg(feature = "toml")]
#[test]
fn a_wrong_enum_value_is_one_problem_not_also_a_missing_field() {
    let e = Config::from_toml_str(
        "[providers.x]\nkind = \"opnai\"\n[providers.y]\nkind = \"openai\"\nbase_ur = \"http://h\"\n",
    )
    .unwrap_err();
    let all = problems(&e);
    assert_eq!(all.len(), 2, "{e}");
    assert!(all[0].contains("opnai") || all[1].contains("opnai"), "{e}");
    assert!(!e.to_string().contains("missing field"), "{e}");
}

#[cfg(feature = "toml")]
#[test]
fn a_single_problem_keeps_the_parsers_message_and_line() {
    let e = Config::from_toml_str("[retry]\nmax_retry = 3\n").unwrap_err();
    assert_eq!(problems(&e).len(), 1, "{e}");
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(e.to_string().contains("max_retry"), "{e}");
}

#[cfg(feature = "toml")]
#[test]
fn a_syntax_error_is_reported_as_is() {
    let e = Config::from_toml_str("[retry\nmax_retries = 3\n").unwrap_err();
    assert_eq!(problems(&e).len(), 1, "{e}");
    assert!(e.to_string().contains("invalid TOML"), "{e}");
}

#[cfg(feature = "toml")]
#[test]
fn a_file_names_itself_and_each_problems_path() {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("typos-{}.toml", std::process::id()));
    std::fs::write(&path, TYPOS).unwrap();
    let e = Config::from_path(&path).unwrap_err().to_string();
    let shown = path.display().to_string();
    for line in [
        format!("{shown}: providers.openai.api_key: unknown field `api_key`, expected one of"),
        format!("{shown}: retry.max_retry: unknown field `max_retry`, expected one of"),
        format!("{shown}: timeout.atempt: unknown field `atempt`, expected one of"),
    ] {
        assert!(e.contains(&line), "{line} missing from:\n{e}");
    }
    assert!(!e.contains("\nin `"), "{e}");
}

/// A route alias in a fallback group is one mistake, said once with what to
/// do instead, not the same complaint from every check that meets it.
#[test]
fn a_route_alias_in_a_fallback_group_is_reported_once_with_a_hint() {
    let config = Config::from_json_str(
        r#"{
        "providers": {"openai": {"kind": "openai", "api_key_env": "K"}},
        "routes": {"smart": ["openai/gpt-4o", "openai/gpt-4o-mini"]},
        "fallback": {"groups": [["smart", "openai/o1"]]}
    }"#,
    )
    .unwrap();
    let e = config.validate_with_env(|_| Some("k".into())).unwrap_err();
    let all = problems(&e);
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(unique, all, "a problem is listed twice:\n{e}");
    assert!(
        all.iter().any(|p| p.starts_with("fallback.groups[0]: ")
            && p.contains("\"smart\" is a route alias")
            && p.contains("fallbacks")),
        "{e}"
    );
}

#[test]
fn a_metrics_listen_address_is_checked_with_the_rest() {
    let config = Config::from_json_str(
        r#"{"server": {"listen": "127.0.0.1:9000", "metrics_listen": "not an address"}}"#,
    )
    .unwrap();
    let e = config.validate_with_env(|_| None).unwrap_err();
    assert!(
        problems(&e)
            .iter()
            .any(|p| p.starts_with("server.metrics_listen: \"not an address\" is not an address")),
        "{e}"
    );
    for (json, says) in [
        (
            r#"{"server": {"listen": "127.0.0.1:9000", "metrics_listen": "127.0.0.1:9000"}}"#,
            "is also server.listen",
        ),
        (
            r#"{"server": {"metrics": false, "metrics_listen": "127.0.0.1:9090"}}"#,
            "metrics are off",
        ),
    ] {
        let e = Config::from_json_str(json)
            .unwrap()
            .validate_with_env(|_| None)
            .unwrap_err();
        assert!(
            problems(&e)
                .iter()
                .any(|p| p.starts_with("server.metrics_listen: ") && p.contains(says)),
            "{e}"
        );
    }
}
