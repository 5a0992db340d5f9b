//! Candidate order: the requested model first, then its groups; named
//! groups, one-way routes, and the max_fallbacks bound.

use super::*;

#[tokio::test(start_paused = true)]
async fn the_requested_model_goes_first_then_the_rest_of_its_group_in_order() {
    let mock = MockProvider::new();
    failing(&mock, OPENAI, ErrorKind::Server);
    failing(&mock, AZURE, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), OPENAI).await.unwrap();

    assert_eq!(mock.called_models(), [OPENAI, AZURE, GROQ]);
    assert_eq!(response.model(), GROQ);
    let tried: Vec<_> = response
        .attempts()
        .iter()
        .map(|a| a.model.as_str())
        .collect();
    assert_eq!(tried, [OPENAI, AZURE, GROQ]);
    assert!(response.attempts()[2].is_success());
}

#[tokio::test(start_paused = true)]
async fn a_model_in_several_groups_tries_every_member_once() {
    let mock = MockProvider::new();
    for m in [AZURE, OPENAI, GROQ] {
        failing(&mock, m, ErrorKind::Server);
    }
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, AZURE])
        .group([GROQ, OPENAI, AZURE, BIG])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [AZURE, OPENAI, GROQ, BIG]);
    assert_eq!(response.model(), BIG);
}

#[tokio::test(start_paused = true)]
async fn a_model_in_no_group_is_called_alone_and_its_error_returned_as_is() {
    let mock = MockProvider::new();
    failing(&mock, BIG, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .build()
        .unwrap();

    let e = send(&layer, mock.clone(), BIG).await.unwrap_err();

    assert_eq!(mock.called_models(), [BIG]);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.candidates_failed(), 0);
    assert!(e.to_string().starts_with("openai/gpt-4.1: 500"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_named_group_is_an_alias_for_its_list() {
    let mock = MockProvider::new();
    failing(&mock, GROQ, ErrorKind::RateLimited);
    let layer = ProviderFallbackLayer::builder()
        .named_group("fast", [GROQ, OPENAI])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), "fast").await.unwrap();
    assert_eq!(mock.called_models(), [GROQ, OPENAI]);
    assert_eq!(response.model(), OPENAI);

    // Its members fall back within it too.
    mock.clear_calls();
    failing(&mock, OPENAI, ErrorKind::Server);
    mock.always(GROQ, MockReply::text("fine"));
    let response = send(&layer, mock.clone(), OPENAI).await.unwrap();
    assert_eq!(mock.called_models(), [OPENAI, GROQ]);
    assert_eq!(response.model(), GROQ);
}

#[tokio::test(start_paused = true)]
async fn a_route_is_one_way_its_members_do_not_fall_back_to_each_other() {
    let mock = MockProvider::new();
    failing(&mock, GROQ, ErrorKind::RateLimited);
    failing(&mock, OPENAI, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .route("fast", [GROQ, OPENAI, BIG])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), "fast").await.unwrap();
    assert_eq!(mock.called_models(), [GROQ, OPENAI, BIG]);
    assert_eq!(response.model(), BIG);

    // A request for a member is that member's alone.
    mock.clear_calls();
    let e = send(&layer, mock.clone(), OPENAI).await.unwrap_err();
    assert_eq!(mock.called_models(), [OPENAI]);
    assert_eq!(e.kind(), ErrorKind::Server);
}

#[tokio::test(start_paused = true)]
async fn a_model_in_no_group_still_takes_the_context_window_route() {
    let mock = MockProvider::new();
    failing(&mock, GROQ, ErrorKind::ContextWindowExceeded);
    failing(&mock, OPENAI, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .on_context_window_exceeded([BIG])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), GROQ).await.unwrap();
    assert_eq!(mock.called_models(), [GROQ, BIG]);
    assert_eq!(response.model(), BIG);

    // Other failures of a lone model come back as they are.
    mock.clear_calls();
    let e = send(&layer, mock.clone(), OPENAI).await.unwrap_err();
    assert_eq!(mock.called_models(), [OPENAI]);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.to_string().starts_with("openai/gpt-4o-mini: 500"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn max_fallbacks_bounds_the_candidates_called() {
    let mock = MockProvider::new();
    for m in [AZURE, OPENAI, GROQ] {
        failing(&mock, m, ErrorKind::Server);
    }
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI, GROQ, BIG])
        .options(RouteOptions::new().max_fallbacks(1))
        .build()
        .unwrap();

    let e = send(&layer, mock.clone(), AZURE).await.unwrap_err();

    assert_eq!(mock.called_models(), [AZURE, OPENAI]);
    assert_eq!(e.candidates_failed(), 2);
}
