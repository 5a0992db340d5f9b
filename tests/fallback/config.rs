//! Groups from code, config and the environment: parsing, errors naming
//! the bad part, and a config value building the same behaviour.

use super::*;

#[test]
fn model_fallback_groups_are_parsed_with_names_and_spaces() {
    let groups = FallbackGroups::parse(
        " azure/gpt-4o-mini , openai/gpt-4o-mini ;\nfast = groq/llama-3.1-8b,openai/gpt-4o-mini;; ",
    )
    .unwrap();
    assert_eq!(
        groups,
        FallbackGroups::new()
            .group([AZURE, OPENAI])
            .named("fast", [GROQ, OPENAI])
    );
    assert!(FallbackGroups::parse("").unwrap().is_empty());
}

#[test]
fn model_fallback_groups_errors_name_the_group_and_the_bad_part() {
    let cases = [
        (
            "azure/gpt-4o-mini,,openai/gpt-4o-mini",
            "group 1",
            "empty model id",
        ),
        (
            "azure/a,openai/b;fast=x=azure/a",
            "group 2 \"fast=x=azure/a\"",
            "more than one '='",
        ),
        ("=azure/a,openai/b", "group 1", "group name is empty"),
        ("azure/a,gpt-4o", "group 1", "\"gpt-4o\" is not of the form"),
        (
            "azure/a,openai/b;openai/c",
            "group 2 \"openai/c\"",
            "at least two distinct models",
        ),
        ("f=azure/a;f=openai/b", "group 2", "\"f\" is used twice"),
        ("my fast=azure/a", "group 1", "contains ' '"),
        (
            "azure/a=openai/b,azure/a",
            "group 1",
            "also a model of a group",
        ),
    ];
    for (spec, group, part) in cases {
        let e = FallbackGroups::parse(spec).unwrap_err();
        let problem = &e.problems()[0];
        assert_eq!(problem.path, "MODEL_FALLBACK_GROUPS", "{spec}");
        assert!(problem.message.contains(group), "{spec}: {e}");
        assert!(problem.message.contains(part), "{spec}: {e}");
    }
}

#[tokio::test(start_paused = true)]
async fn groups_come_from_the_environment_variable() {
    // The only test in this binary that touches the variable.
    std::env::set_var(
        "MODEL_FALLBACK_GROUPS",
        "azure/gpt-4o-mini,openai/gpt-4o-mini",
    );
    let layer = ProviderFallbackLayer::from_env().unwrap();
    std::env::set_var("MODEL_FALLBACK_GROUPS", "azure/gpt-4o-mini,,");
    let e = ProviderFallbackLayer::from_env().unwrap_err();
    std::env::remove_var("MODEL_FALLBACK_GROUPS");

    assert!(
        e.to_string().starts_with("MODEL_FALLBACK_GROUPS: group 1"),
        "{e}"
    );
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::Server);
    let response = send(&layer, mock.clone(), AZURE).await.unwrap();
    assert_eq!(response.model(), OPENAI);
}

#[test]
fn malformed_ids_in_code_and_config_are_rejected_at_build_with_their_path() {
    let e = ProviderFallbackLayer::builder()
        .group([AZURE, "gpt-4o"])
        .named_group("fast", Vec::<String>::new())
        .on_context_window_exceeded(["big model"])
        .build()
        .unwrap_err();
    let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["groups[0]", "named_groups.fast", "context_window_fallbacks"]
    );
    assert!(e.to_string().contains("\"gpt-4o\""), "{e}");
    assert!(e.to_string().contains("\"big model\""), "{e}");

    let config: FallbackConfig = serde_json::from_value(serde_json::json!({
        "groups": [[AZURE, OPENAI]],
        "fallback_on": {"bogus": true},
        "content_filter_fallbacks": {"models": {"azure": [OPENAI]}}
    }))
    .unwrap();
    let e = ProviderFallbackLayer::from_config(&config).unwrap_err();
    let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "fallback_on.bogus",
            "content_filter_fallbacks_per_model.azure"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_config_value_builds_the_same_behaviour() {
    let config: FallbackConfig = serde_json::from_value(serde_json::json!({
        "groups": format!("{AZURE},{OPENAI}; fast={GROQ},{OPENAI}"),
        "context_window_fallbacks": [BIG],
        "fallback_on": {"bad_request": true},
        "max_fallbacks": 2
    }))
    .unwrap();
    let layer = ProviderFallbackLayer::from_config(&config).unwrap();
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContextWindowExceeded);
    failing(&mock, GROQ, ErrorKind::BadRequest);

    assert_eq!(
        send(&layer, mock.clone(), AZURE).await.unwrap().model(),
        BIG
    );
    assert_eq!(
        send(&layer, mock.clone(), "fast").await.unwrap().model(),
        OPENAI
    );
}
