//! Routes from code and config: invalid ones refused naming the bad
//! value; a map or a list.

use super::*;

#[test]
fn invalid_routes_are_rejected_at_build_naming_the_bad_value() {
    // (candidates, path of the problem, what it says)
    type Case = (Vec<(&'static str, f64)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![(A, -0.5), (B, 1.0)],
            "routes.r.azure/gpt-4o",
            "weight -0.5 is negative",
        ),
        (
            vec![(A, f64::NAN), (B, 1.0)],
            "routes.r.azure/gpt-4o",
            "weight NaN is not a finite number",
        ),
        (
            vec![(A, f64::INFINITY)],
            "routes.r.azure/gpt-4o",
            "weight inf is not a finite number",
        ),
        (vec![(A, 0.0), (B, 0.0)], "routes.r", "every weight is zero"),
        (vec![], "routes.r", "no candidate"),
        (
            vec![("gpt-4o", 1.0)],
            "routes.r.gpt-4o",
            "\"gpt-4o\" is not of the form",
        ),
        (
            vec![(A, 1.0), (A, 2.0)],
            "routes.r.azure/gpt-4o",
            "listed twice",
        ),
    ];
    for (candidates, path, message) in cases {
        let e = WeightedBalanceLayer::builder()
            .route("r", candidates.clone())
            .build()
            .unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(p.path, path, "{candidates:?}: {e}");
        assert!(p.message.contains(message), "{candidates:?}: {e}");
    }

    let e = WeightedBalanceLayer::builder()
        .route("r", [(A, 1.0)])
        .route(B, [(B, 1.0), (C, 1.0)])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("also a candidate"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn routes_come_from_a_map_or_a_list_in_config() {
    let config: BalanceConfig = serde_json::from_value(serde_json::json!({
        "routes": {
            "map": {A: 0.0, B: 1.0},
            "list": [{"model": C, "weight": 0.0}, A]
        },
        "seed": 1
    }))
    .unwrap();
    let mock = MockProvider::new();
    let mut service = WeightedBalanceLayer::from_config(&config)
        .unwrap()
        .layer(mock.clone());

    assert_eq!(send(&mut service, request("map")).await.unwrap().model(), B);
    assert_eq!(
        send(&mut service, request("list")).await.unwrap().model(),
        A
    );

    let bad: BalanceConfig =
        serde_json::from_value(serde_json::json!({"routes": {"r": {A: -1.0}}})).unwrap();
    let e = WeightedBalanceLayer::from_config(&bad).unwrap_err();
    assert_eq!(e.problems()[0].path, "routes.r.azure/gpt-4o");
}
