//! Which failure kinds fall back, and the dedicated routes per kind
//! (context window, content filter).

use super::*;

#[tokio::test(start_paused = true)]
async fn kinds_that_do_not_fall_back_stop_at_the_first_candidate() {
    for kind in [
        ErrorKind::BadRequest,
        ErrorKind::ContentFilter,
        ErrorKind::ContextWindowExceeded,
        ErrorKind::Cancelled,
    ] {
        let mock = MockProvider::new();
        failing(&mock, AZURE, kind);
        let layer = ProviderFallbackLayer::builder()
            .group([AZURE, OPENAI])
            .build()
            .unwrap();

        let e = send(&layer, mock.clone(), AZURE).await.unwrap_err();

        assert_eq!(mock.called_models(), [AZURE], "{kind}");
        assert_eq!(e.kind(), kind);
        assert_eq!(
            e.message(),
            format!("mock {kind}"),
            "the provider's reason reaches the caller"
        );
        assert_eq!(e.attempts().len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn which_kinds_fall_back_can_be_overridden_per_kind() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::BadRequest);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .options(RouteOptions::new().fallback_on(ErrorKind::BadRequest, true))
        .build()
        .unwrap();
    let response = send(&layer, mock.clone(), AZURE).await.unwrap();
    assert_eq!(response.model(), OPENAI);

    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::Server);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .options(RouteOptions::new().fallback_on(ErrorKind::Server, false))
        .build()
        .unwrap();
    let e = send(&layer, mock.clone(), AZURE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(mock.called_models(), [AZURE]);
}

#[tokio::test(start_paused = true)]
async fn context_window_exceeded_goes_to_the_larger_context_list_not_the_group() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContextWindowExceeded);
    failing(&mock, BIG, ErrorKind::ContextWindowExceeded);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .on_context_window_exceeded([BIG, BIGGER])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    // openai/gpt-4o-mini has the same window: it is not tried.
    assert_eq!(mock.called_models(), [AZURE, BIG, BIGGER]);
    assert_eq!(response.model(), BIGGER);
}

#[tokio::test(start_paused = true)]
async fn a_per_model_context_window_route_takes_precedence_over_the_global_one() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContextWindowExceeded);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .on_context_window_exceeded([BIG])
        .on_context_window_exceeded_for(AZURE, [BIGGER])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(mock.called_models(), [AZURE, BIGGER]);
    assert_eq!(response.model(), BIGGER);
}

#[tokio::test(start_paused = true)]
async fn a_content_filter_failure_goes_only_where_configured() {
    let mock = MockProvider::new();
    failing(&mock, AZURE, ErrorKind::ContentFilter);
    let layer = ProviderFallbackLayer::builder()
        .group([AZURE, OPENAI])
        .on_content_filter(["anthropic/claude-3-5-sonnet-20240620"])
        .build()
        .unwrap();

    let response = send(&layer, mock.clone(), AZURE).await.unwrap();

    assert_eq!(
        mock.called_models(),
        [AZURE, "anthropic/claude-3-5-sonnet-20240620"]
    );
    assert_eq!(response.model(), "anthropic/claude-3-5-sonnet-20240620");
}
