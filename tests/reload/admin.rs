//! `POST /admin/reload`: behind the client key, off unless enabled.

use llm_fallback::mock::{MockServer, ServerReply};
use llm_fallback::Config;
use serde_json::Value;

use super::{config, Gateway, KEY};

#[tokio::test]
async fn the_admin_endpoint_is_not_served_unless_enabled() {
    let mock = MockServer::start().await;
    let gw = Gateway::start(&config(&mock.base_url(), r#"chat = ["mock/gpt"]"#, "")).await;
    let response = gw
        .http
        .post(gw.url("/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(gw.reloader.generation().number, 1);
}

#[tokio::test]
async fn the_admin_endpoint_needs_the_client_key_and_reloads() {
    let mock = MockServer::start().await;
    mock.always("gpt", ServerReply::text("hello"));
    let on = "admin_reload = true";
    let gw = Gateway::start(&config(&mock.base_url(), r#"chat = ["mock/gpt"]"#, on)).await;
    let post = || gw.http.post(gw.url("/admin/reload"));

    assert_eq!(post().send().await.unwrap().status(), 401);
    assert_eq!(
        post().bearer_auth("wrong").send().await.unwrap().status(),
        401
    );
    assert_eq!(gw.reloader.generation().number, 1);

    gw.write(&config(
        &mock.base_url(),
        r#"chat = ["mock/gpt"]
        added = ["mock/gpt"]"#,
        on,
    ));
    let response = post().bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["generation"], 2);
    assert_eq!(body["config_hash"], gw.reloader.generation().hash.as_str());
    assert_eq!(gw.chat("added").await.status(), 200);

    // A broken config: 422 with every problem, generation 2 stays.
    gw.write(&config(
        &mock.base_url(),
        r#"chat = ["nowhere/gpt"]"#,
        "admin_reload = true\nbody_limit = 0",
    ));
    let response = post().bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let paths: Vec<&str> = (body["problems"].as_array().unwrap().iter())
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.iter().any(|p| p.starts_with("routes.chat")), "{body}");
    assert!(paths.contains(&"server.body_limit"), "{body}");
    assert_eq!(body["generation"], 2);
    assert_eq!(gw.reloader.generation().number, 2);
    assert_eq!(gw.chat("added").await.status(), 200);
}

#[test]
fn the_admin_endpoint_needs_a_client_key_in_the_config() {
    let config = Config::from_toml_str("[server]\nadmin_reload = true").unwrap();
    let e = config.validate_with_env(|_| None).unwrap_err();
    assert_eq!(e.problems()[0].path, "server.admin_reload", "{e}");
}
