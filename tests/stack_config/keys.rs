//! `keys` from a config over real sockets, for each provider kind: key A
//! rate-limited, key B revoked, key C healthy.

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::ErrorKind;
use tower::ServiceExt;

use crate::*;

const KEY_A: &str = "sk-cfg-A-SECRET-0001";
const KEY_B: &str = "sk-cfg-B-SECRET-0002";
const KEY_C: &str = "sk-cfg-C-SECRET-0003";

/// A and B share tier 0 (drawn in a seeded order), C is tier 1.
fn config(kind: &str, url: &str) -> String {
    let url = match kind {
        "azure" => format!("endpoint = {url:?}"),
        _ => format!("base_url = {url:?}"),
    };
    format!(
        r#"
        seed = 11
        [providers.p]
        kind = "{kind}"
        {url}
        keys = [{{ label = "ab", env_list = "AB_KEYS" }}, {{ label = "c", env = "C_KEY", tier = 1 }}]
        [routes]
        chat = ["p/m"]
        "#
    )
}

#[tokio::test]
async fn a_request_is_served_by_c_after_one_call_on_a_and_one_on_b_for_every_kind() {
    for kind in ["openai", "azure", "anthropic"] {
        let server = MockServer::start().await;
        let (url, limited, revoked) = match kind {
            "openai" => (server.base_url(), "rate_limit_exceeded", "invalid_api_key"),
            "azure" => (server.endpoint(), "rate_limit_exceeded", "invalid_api_key"),
            _ => (
                server.anthropic_base_url(),
                "rate_limit_error",
                "authentication_error",
            ),
        };
        server.always_for_key("m", KEY_A, ServerReply::error(429, limited, "slow down"));
        server.always_for_key("m", KEY_B, ServerReply::error(401, revoked, "revoked"));
        let keys = [("AB_KEYS", &*format!("{KEY_A},{KEY_B}")), ("C_KEY", KEY_C)];
        let stack = stack(&config(kind, &url), &keys);

        let response = stack.clone().oneshot(chat("chat", false)).await.unwrap();

        let presented: Vec<String> = (server.calls().iter())
            .map(|c| c.api_key().unwrap_or("<none>").to_owned())
            .collect();
        assert_eq!(presented.len(), 3, "{kind}: {presented:?}");
        assert_eq!(presented[2], KEY_C, "{kind}: C serves, last");
        assert!(
            presented.contains(&KEY_A.to_owned()) && presented.contains(&KEY_B.to_owned()),
            "{kind}: one call each on A and B: {presented:?}"
        );
        assert_eq!(response.model(), "p/m");
        let labels: Vec<_> = (response.attempts().iter())
            .map(|a| (a.key.clone().unwrap_or_default(), a.error))
            .collect();
        assert_eq!(labels.len(), 3, "{kind}: {labels:?}");
        assert_eq!(labels[2], ("c".to_owned(), None), "{kind}");
        let errors: Vec<_> = labels[..2].iter().map(|(_, e)| *e).collect();
        assert!(
            errors.contains(&Some(ErrorKind::RateLimited))
                && errors.contains(&Some(ErrorKind::Auth)),
            "{kind}: {labels:?}"
        );

        // A and B cool in the stack's own store: the next request goes straight to C.
        let health = stack.health();
        assert!(health.cooling_until("p#ab-1").is_some(), "{kind}");
        assert!(health.cooling_until("p#ab-2").is_some(), "{kind}");
        stack.clone().oneshot(chat("chat", false)).await.unwrap();
        assert_eq!(server.calls().len(), 4, "{kind}");
        assert_eq!(server.calls()[3].api_key(), Some(KEY_C), "{kind}");
    }
}
