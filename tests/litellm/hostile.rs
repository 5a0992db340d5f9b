//! No YAML text panics the readers: arbitrary text, and LiteLLM's example
//! with values swapped for odd ones (huge numbers, NaN, lists, deep nesting,
//! aliases). Bounded case counts, so `cargo test` stays fast.

use proptest::prelude::*;

use super::docs::PROXY_SERVER_CONFIG;
use super::*;

/// Values a field of a LiteLLM file may hold.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| format!("{f:e}")),
        any::<i128>().prop_map(|n| n.to_string()),
        Just(".nan".to_owned()),
        Just("-.inf".to_owned()),
        Just("[1, [2, [3]]]".to_owned()),
        Just("{a: {b: {c: d}}}".to_owned()),
        Just("os.environ/".to_owned()),
        Just("os.environ/NOT_SET".to_owned()),
        Just("!tagged 3".to_owned()),
        Just("~".to_owned()),
        "[a-z0-9/*._-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_translated_or_refused_without_panicking(text in "(?s).{0,300}") {
        let _ = Config::from_litellm_yaml_with_env(&text, env(&[]));
        let _ = Config::from_yaml_str(&text);
    }

    #[test]
    fn odd_values_in_a_real_config_are_problems_or_warnings(
        key in prop::sample::select(vec![
            "rpm: 480", "timeout: 300", "stream_timeout: 60", "max_retries: 1",
            "RateLimitErrorRetries: 3", "redis_port: os.environ/REDIS_PORT",
            "model: \"gpt-3.5-turbo-1106\"", "api_key: fake-key",
            "default_fallbacks: [\"gpt-3.5-turbo-large\"]", "master_key: sk-1234",
        ]),
        value in odd_value(),
    ) {
        let (name, _) = key.split_once(": ").unwrap();
        let text = PROXY_SERVER_CONFIG.replacen(key, &format!("{name}: {value}"), 1);
        if let Ok(t) = Config::from_litellm_yaml_with_env(&text, env(&[("REDIS_HOST", "h")])) {
            // What translates prints, and reads back the same.
            let toml = t.config.to_toml_string().unwrap();
            prop_assert_eq!(Config::from_toml_str(&toml).unwrap(), t.config);
        }
    }
}

#[test]
fn a_billion_laughs_is_refused_not_expanded() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ('b'..='j').zip('a'..='i') {
        text.push_str(&format!(
            "{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    text.push_str("model_list: *j\n");
    let e = Config::from_litellm_yaml_with_env(&text, env(&[])).unwrap_err();
    assert!(e.to_string().contains("invalid YAML"), "{e}");
}
