//! The model list and the readiness route that follows the cooldowns.

use super::*;

#[tokio::test]
async fn models_lists_models_and_route_aliases_in_openai_shape() {
    let app = Server::builder(MockProvider::new())
        .models(["openai/gpt-4o-mini", "azure-eu/gpt-4o"])
        .route("smart", ["openai/gpt-4o-mini", "azure-eu/gpt-4o"])
        .build()
        .unwrap();
    let http = start(app).await;

    let body: Value = http.get("/v1/models").await.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    let ids: Vec<_> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["openai/gpt-4o-mini", "azure-eu/gpt-4o", "smart"]);
    let owners: Vec<_> = data
        .iter()
        .map(|m| m["owned_by"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["openai", "azure-eu", "llm-fallback"]);
    for model in data {
        assert_eq!(model["object"], "model");
        assert!(model["created"].as_u64().unwrap() > 1_700_000_000);
    }

    let one: Value = http
        .get("/v1/models/azure-eu/gpt-4o")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "azure-eu/gpt-4o");
    let (status, _, error) = error_of(http.get("/v1/models/openai/nope").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found");
}

#[derive(Clone, Default)]
struct FakeHealth(Arc<Mutex<HashMap<String, Instant>>>);

impl FakeHealth {
    fn cool(&self, model: &str, for_: Duration) {
        self.0
            .lock()
            .unwrap()
            .insert(model.into(), Instant::now() + for_);
    }

    fn heal(&self, model: &str) {
        self.0.lock().unwrap().remove(model);
    }
}

impl HealthView for FakeHealth {
    fn cooling_until(&self, model: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(model).copied()
    }
}

#[tokio::test]
async fn readiness_follows_the_cooldowns_of_the_route_candidates() {
    let health = FakeHealth::default();
    let app = Server::builder(MockProvider::new())
        .routes([
            ("smart", ["openai/a", "azure/b"]),
            ("cheap", ["openai/a", "openai/a"]),
        ])
        .health(Health::new(health.clone()))
        .build()
        .unwrap();
    let http = start(app).await;
    let ready = || http.get("/health/ready");

    assert_eq!(ready().await.status(), StatusCode::OK);

    health.cool("openai/a", Duration::from_secs(60));
    let response = ready().await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "azure/b still serves `smart`"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["routes"]["smart"]["available"], json!(["azure/b"]));
    assert_eq!(body["routes"]["cheap"]["available"], json!([]));

    health.cool("azure/b", Duration::from_secs(20));
    let response = ready().await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "retry-after"), Some("20"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["routes"]["smart"]["cooling"]["azure/b"], 20);
    let live: Value = http.get("/health").await.json().await.unwrap();
    assert_eq!(
        live["status"], "ok",
        "liveness does not depend on upstreams"
    );

    health.heal("azure/b");
    assert_eq!(ready().await.status(), StatusCode::OK);
}
