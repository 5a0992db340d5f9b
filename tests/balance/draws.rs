//! Weighted draws: first choices match the weights, re-draws renormalise,
//! zero-weight and named candidates, aliases, sticky keys, and what is
//! not drawn at all.

use super::*;

#[tokio::test(start_paused = true)]
async fn first_choices_over_10_000_seeded_draws_match_the_weights() {
    let mock = MockProvider::new();
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 42).layer(mock.clone());
    let n = 10_000;

    let mut counts = HashMap::new();
    for _ in 0..n {
        let response = send(&mut service, request("gpt-4o")).await.unwrap();
        *counts.entry(response.model().to_owned()).or_insert(0) += 1;
    }

    assert_eq!(
        mock.calls().len(),
        n,
        "one call per request when all succeed"
    );
    for (model, weight) in [(A, 0.5), (B, 0.3), (C, 0.2)] {
        let got = share(&counts, model, n);
        assert!((got - weight).abs() < 0.02, "{model}: {got} vs {weight}");
    }
}

#[tokio::test(start_paused = true)]
async fn redraws_follow_the_renormalised_remaining_weights_and_never_repeat() {
    let mock = MockProvider::new();
    for m in [A, B, C] {
        mock.always(m, MockReply::error(ErrorKind::Server));
    }
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 7).layer(mock.clone());

    // Second choices after A was drawn first (and failed).
    let mut after_a = HashMap::new();
    let mut firsts = 0;
    for _ in 0..10_000 {
        let e = send(&mut service, request("gpt-4o")).await.unwrap_err();
        let order: Vec<_> = e.attempts().iter().map(|a| a.model.clone()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, [C, A, B], "each candidate exactly once");
        assert_eq!(e.candidates_failed(), 3);
        if order[0] == A {
            firsts += 1;
            *after_a.entry(order[1].clone()).or_insert(0) += 1;
        }
    }

    // Remaining weights 0.3 / 0.2 renormalise to 0.6 / 0.4.
    assert!(
        (4_500..5_500).contains(&firsts),
        "A first about half the time: {firsts}"
    );
    assert!(
        (share(&after_a, B, firsts) - 0.6).abs() < 0.02,
        "{after_a:?}"
    );
    assert!(
        (share(&after_a, C, firsts) - 0.4).abs() < 0.02,
        "{after_a:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_weight_candidates_are_only_used_when_named() {
    let mock = MockProvider::new();
    mock.always(A, MockReply::error(ErrorKind::Server));
    let mut service = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(A, 1.0), (Z, 0.0)])
        .rng(SharedRng::seeded(1))
        .build()
        .unwrap()
        .layer(mock.clone());

    for _ in 0..200 {
        let e = send(&mut service, request("gpt-4o")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
    }
    assert_eq!(mock.call_count(Z), 0);

    let response = send(&mut service, request(Z)).await.unwrap();
    assert_eq!(response.model(), Z);
}

#[tokio::test(start_paused = true)]
async fn a_named_candidate_goes_first_then_the_draws() {
    let mock = MockProvider::new();
    mock.always(B, MockReply::error(ErrorKind::Timeout));
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 3).layer(mock.clone());

    let mut second = HashMap::new();
    for _ in 0..1_000 {
        let response = send(&mut service, request(B)).await.unwrap();
        *second.entry(response.model().to_owned()).or_insert(0) += 1;
    }

    assert_eq!(
        mock.call_count(B),
        1_000,
        "the named candidate is always tried"
    );
    assert_eq!(mock.calls().len(), 2_000);
    // Then A and C by their weights: 0.5 / 0.7 and 0.2 / 0.7.
    let a = share(&second, A, 1_000);
    assert!((a - 0.714).abs() < 0.05, "{second:?}");
}

#[tokio::test(start_paused = true)]
async fn by_alias_only_a_named_candidate_is_just_that_model() {
    let mock = MockProvider::new();
    mock.always(B, MockReply::error(ErrorKind::Timeout));
    let mut service = WeightedBalanceLayer::builder()
        .route("gpt-4o", [(A, 0.5), (B, 0.3), (C, 0.2)])
        .by_alias_only()
        .rng(SharedRng::seeded(3))
        .build()
        .unwrap()
        .layer(mock.clone());

    let e = send(&mut service, request(B)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(mock.called_models(), [B]);

    // The alias still draws among all three, B included, and moves past B's
    // timeout to a redraw: each alias call's upstream order is one of these.
    mock.clear_calls();
    let mut firsts = HashMap::new();
    for _ in 0..200 {
        let response = send(&mut service, request("gpt-4o")).await.unwrap();
        let order: Vec<_> = response
            .attempts()
            .iter()
            .map(|a| a.model.as_str())
            .collect();
        assert!(
            matches!(order.as_slice(), [A] | [C] | [B, A] | [B, C]),
            "{order:?}"
        );
        assert_eq!(response.model(), *order.last().unwrap());
        *firsts.entry(order[0].to_owned()).or_insert(0) += 1;
    }
    assert_eq!(firsts.len(), 3, "every candidate drawn first: {firsts:?}");
    assert_eq!(mock.call_count(B), firsts[B], "B called only when drawn");
    assert_eq!(mock.calls().len(), 200 + firsts[B]);
}

#[tokio::test(start_paused = true)]
async fn the_same_sticky_key_gets_the_same_first_choice() {
    let mock = MockProvider::new();
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 11).layer(mock.clone());
    let keyed = |key: &str| {
        let mut req = request("gpt-4o");
        req.extensions_mut().insert(StickyKey::new(key));
        req
    };

    let mut firsts = HashMap::new();
    for user in 0..2_000 {
        let key = format!("user-{user}");
        let first = send(&mut service, keyed(&key))
            .await
            .unwrap()
            .model()
            .to_owned();
        for _ in 0..3 {
            let again = send(&mut service, keyed(&key)).await.unwrap();
            assert_eq!(again.model(), first, "{key}");
        }
        *firsts.entry(first).or_insert(0) += 1;
    }

    // Keys still spread by weight.
    for (model, weight) in [(A, 0.5), (B, 0.3), (C, 0.2)] {
        let got = share(&firsts, model, 2_000);
        assert!((got - weight).abs() < 0.05, "{model}: {got}");
    }
}

#[tokio::test(start_paused = true)]
async fn non_fallback_kinds_do_not_redraw() {
    let mock = MockProvider::new();
    for m in [A, B, C] {
        mock.always(m, MockReply::error(ErrorKind::BadRequest));
    }
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 9).layer(mock.clone());

    let e = send(&mut service, request("gpt-4o")).await.unwrap_err();

    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert_eq!(mock.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn requests_for_other_models_pass_through_unchanged() {
    let mock = MockProvider::new();
    let mut service = layer([(A, 0.5), (B, 0.3), (C, 0.2)], 9).layer(mock.clone());

    let response = send(&mut service, request("groq/llama-3.1-8b"))
        .await
        .unwrap();

    assert_eq!(mock.called_models(), ["groq/llama-3.1-8b"]);
    assert_eq!(response.model(), "groq/llama-3.1-8b");
    assert!(
        response.attempts().is_empty(),
        "nothing routed, nothing logged here"
    );
}
