//! The HTTP client under the provider clients: one POST, its head, and its
//! body as a stream of byte frames whose errors are already [`ChatError`]s.
//!
//! Two clients can stand here:
//!
//! - **Our own** (the default with the `rustls` feature): hyper's pooled
//!   client, with rustls (the platform's verifier, HTTP/2 by ALPN) and the
//!   timeouts the default `reqwest::Client` had: a connect timeout of
//!   [`DEFAULT_CONNECT`](crate::layers::timeout::DEFAULT_CONNECT), a read
//!   timeout of [`DEFAULT_READ`](crate::layers::timeout::DEFAULT_READ) (for
//!   the head, and between two frames of the body); `TCP_NODELAY`, idle
//!   connections kept 90 s, and, unlike reqwest, no redirect followed (a
//!   provider API that redirects a POST is misconfigured). A JSON call
//!   served through it costs about a fifth fewer instructions than through
//!   reqwest, which parses each request's URL twice and walks its redirect
//!   layer (see `docs/PERFORMANCE.md`).
//! - **A `reqwest::Client`**: the user's own (`http_client`), or a default
//!   one where ours cannot stand in: without the `rustls` feature (bring
//!   your own reqwest TLS feature), and when a proxy is set in the
//!   environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, any case),
//!   which reqwest honours and ours does not.

use std::error::Error as StdError;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, StatusCode, Uri};

use crate::chat::{ChatError, ErrorKind};

#[cfg(feature = "rustls")]
pub(crate) use self::own::Own;

/// A response body: its byte frames, or why it broke (`Connect`, or
/// `Timeout` for the read timeout).
pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, ChatError>> + Send>>;

/// A provider's answer: its head, and its body still to read.
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The body's length, when the head declares it.
    pub(crate) content_length: Option<u64>,
    pub(crate) body: Body,
}

/// The client a provider client POSTs with.
#[derive(Clone)]
pub(crate) enum Client {
    /// hyper's pooled client, ours.
    #[cfg(feature = "rustls")]
    Own(Own),
    /// A reqwest client: the user's, or a default one.
    Reqwest(reqwest::Client),
}

impl Client {
    /// The client a provider client gets when the user gives none; an
    /// error says why none can be built.
    pub(crate) fn default_client() -> Result<Client, String> {
        #[cfg(feature = "rustls")]
        if !proxy_in(|name| std::env::var_os(name)) {
            return Own::new().map(Client::Own);
        }
        reqwest::Client::builder()
            .connect_timeout(crate::layers::timeout::DEFAULT_CONNECT)
            .read_timeout(crate::layers::timeout::DEFAULT_READ)
            .build()
            .map(Client::Reqwest)
            .map_err(|e| e.to_string())
    }

    /// POSTs `body` with `headers` to `uri`. An error is one without a
    /// response head: `Connect` (refused, reset, DNS, TLS, closed before
    /// the head) or `Timeout`.
    pub(crate) async fn post(
        &self,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Response, ChatError> {
        let mut request = http::Request::new(Bytes::from(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        match self {
            #[cfg(feature = "rustls")]
            Client::Own(own) => own.post(request).await,
            Client::Reqwest(client) => {
                // reqwest's errors name the URL: taken out, as configuration.
                let request =
                    reqwest::Request::try_from(request).map_err(|e| send_error(e.without_url()))?;
                let response = client
                    .execute(request)
                    .await
                    .map_err(|e| send_error(e.without_url()))?;
                let content_length = response.content_length();
                let status = response.status();
                let mut response = http::Response::from(response);
                let headers = std::mem::take(response.headers_mut());
                let frames = http_body_util::BodyDataStream::new(response.into_body());
                let body = futures_util::StreamExt::map(frames, |frame| {
                    frame.map_err(|e| body_error(e.without_url()))
                });
                Ok(Response {
                    status,
                    headers,
                    content_length,
                    body: Box::pin(body),
                })
            }
        }
    }
}

/// Whether the environment (read by `var`) names a proxy for outgoing
/// HTTP(S), as reqwest reads it (empty values name none).
#[cfg(feature = "rustls")]
fn proxy_in(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// A request that got no response head: `Timeout` when a timeout ended it
/// (connect or read), `Connect` otherwise.
fn send_error(e: impl StdError + Send + Sync + 'static) -> ChatError {
    let kind = if timed_out(&e) {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    ChatError::new(kind, describe(&e)).with_source(e)
}

/// A read error in the middle of a body: the connection broke (`Connect`),
/// or the read timeout ended it (`Timeout`).
fn body_error(e: impl StdError + Send + Sync + 'static) -> ChatError {
    let kind = if timed_out(&e) {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    ChatError::new(kind, format!("reading the response body: {}", describe(&e))).with_source(e)
}

/// Whether `e` or one of its causes is a timeout.
fn timed_out(e: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<reqwest::Error>() {
            if e.is_timeout() {
                return true;
            }
        }
        if let Some(e) = c.downcast_ref::<std::io::Error>() {
            if e.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if c.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The error and its causes, without the URL (the caller knows it, and a
/// base URL is configuration we keep out of messages).
fn describe(e: &(dyn StdError + 'static)) -> String {
    let head = match e.downcast_ref::<reqwest::Error>() {
        Some(e) if e.is_connect() => "connection failed",
        Some(e) if e.is_timeout() => "timed out",
        Some(e) if e.is_body() || e.is_decode() => "response body broken",
        Some(_) => "request failed",
        None => own_head(e),
    };
    let mut parts = vec![head.to_owned()];
    // reqwest's own text names the URL, and hyper's client's only its
    // kind, which the head says: start at their causes.
    let mut cause = match e.source() {
        Some(source) if wraps(e) => Some(source),
        _ => Some(e),
    };
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// Whether `e` is a client's error whose text the head replaces.
fn wraps(e: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "rustls")]
    if e.is::<hyper_util::client::legacy::Error>() {
        return true;
    }
    e.is::<reqwest::Error>()
}

/// The head of an error of our own client's.
fn own_head(e: &(dyn StdError + 'static)) -> &'static str {
    #[cfg(feature = "rustls")]
    if let Some(e) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
        return match e.is_connect() {
            true => "connection failed",
            false => "request failed",
        };
    }
    if timed_out(e) {
        return "timed out";
    }
    "response body broken"
}

#[cfg(feature = "rustls")]
mod own {
    use std::sync::Arc;
    use std::task::{ready, Context, Poll};
    use std::time::Duration;

    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    use tokio::time::{Instant, Sleep};

    use super::*;
    use crate::layers::timeout::{DEFAULT_CONNECT, DEFAULT_READ};

    /// How long an idle pooled connection is kept (reqwest's default).
    const POOL_IDLE: Duration = Duration::from_secs(90);

    /// hyper's pooled client over rustls.
    #[derive(Clone)]
    pub(crate) struct Own {
        // Shared: the client itself is a few hundred bytes.
        client: Arc<hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
    }

    impl Own {
        pub(crate) fn new() -> Result<Own, String> {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(|config| config.with_platform_verifier())
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .with_no_client_auth();
            let mut tcp = HttpConnector::new();
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(Some(DEFAULT_CONNECT));
            let connector = HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tcp);
            let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE)
                .build(connector);
            Ok(Own {
                client: Arc::new(client),
            })
        }

        pub(super) async fn post(
            &self,
            request: http::Request<Bytes>,
        ) -> Result<Response, ChatError> {
            let send = self.client.request(request.map(Full::new));
            let response = match tokio::time::timeout(DEFAULT_READ, send).await {
                Ok(sent) => sent.map_err(send_error)?,
                Err(elapsed) => return Err(send_error(elapsed)),
            };
            let (head, body) = response.into_parts();
            let content_length = hyper::body::Body::size_hint(&body).exact();
            Ok(Response {
                status: head.status,
                headers: head.headers,
                content_length,
                body: Box::pin(Frames::<Incoming>::new(body)),
            })
        }
    }

    /// A body's data frames, failing with `Timeout` when none comes for
    /// [`DEFAULT_READ`]. The timer is armed when a read first waits, and
    /// moved only when it fires while frames have come since it was set:
    /// a stream's frames cost no timer work each.
    pub(super) struct Frames<B> {
        body: B,
        /// When the last frame (or the head) came.
        last: Instant,
        idle: Option<Pin<Box<Sleep>>>,
    }

    impl<B> Frames<B> {
        pub(super) fn new(body: B) -> Self {
            Frames {
                body,
                last: Instant::now(),
                idle: None,
            }
        }
    }

    impl<B> Stream for Frames<B>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: StdError + Send + Sync + 'static,
    {
        type Item = Result<Bytes, ChatError>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let this = self.get_mut();
            loop {
                match Pin::new(&mut this.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        this.last = Instant::now();
                        match frame.into_data() {
                            Ok(data) => return Poll::Ready(Some(Ok(data))),
                            // Trailers carry no content.
                            Err(_) => continue,
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(body_error(e)))),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
                let last = this.last;
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + DEFAULT_READ)));
                loop {
                    ready!(idle.as_mut().poll(cx));
                    // Set before the last frame came: moved, not a timeout.
                    let deadline = this.last + DEFAULT_READ;
                    if Instant::now() < deadline {
                        idle.as_mut().reset(deadline);
                        continue;
                    }
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
                    return Poll::Ready(Some(Err(body_error(e))));
                }
            }
        }
    }

    use std::future::Future as _;
}

#[cfg(all(test, feature = "rustls"))]
mod tests {
    use std::convert::Infallible;
    use std::ffi::OsString;

    use futures_util::StreamExt;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::own::Frames;
    use super::*;
    use crate::layers::timeout::DEFAULT_READ;

    #[test]
    fn a_proxy_in_the_environment_is_seen_in_any_case_and_an_empty_one_is_not() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert!(!proxy_in(env(&[])));
        assert!(!proxy_in(env(&[("HTTPS_PROXY", ""), ("NO_PROXY", "x")])));
        assert!(proxy_in(env(&[("HTTPS_PROXY", "http://p:3128")])));
        assert!(proxy_in(env(&[("http_proxy", "http://p:3128")])));
        assert!(proxy_in(env(&[("ALL_PROXY", "socks5://p")])));
        assert!(proxy_in(env(&[("all_proxy", "socks5://p")])));
    }

    type Pieces = Vec<Result<Frame<Bytes>, Infallible>>;
    type Scripted =
        StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

    fn frames(pieces: Pieces, then_silent: bool) -> Frames<Scripted> {
        let head = futures_util::stream::iter(pieces);
        let body = match then_silent {
            true => head.chain(futures_util::stream::pending()).boxed(),
            false => head.boxed(),
        };
        Frames::new(StreamBody::new(body))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_silent_for_the_read_timeout_fails_with_timeout_after_what_came() {
        let started = tokio::time::Instant::now();
        let pieces = vec![
            Ok(Frame::data(Bytes::from_static(b"data: 1\n\n"))),
            Ok(Frame::trailers(HeaderMap::new())),
            Ok(Frame::data(Bytes::from_static(b"data: 2\n\n"))),
        ];
        let mut body = frames(pieces, true);
        assert_eq!(body.next().await.unwrap().unwrap(), "data: 1\n\n");
        // Trailers carry no content and are passed over.
        assert_eq!(body.next().await.unwrap().unwrap(), "data: 2\n\n");
        let e = body.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(
            e.message()
                .starts_with("reading the response body: timed out"),
            "{e}"
        );
        assert_eq!(started.elapsed(), DEFAULT_READ);
    }

    #[tokio::test(start_paused = true)]
    async fn the_read_timeout_counts_from_the_last_frame_not_from_the_first_wait() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        let body = tokio_stream_of(rx);
        let mut body = Frames::new(StreamBody::new(body));
        let started = tokio::time::Instant::now();
        let feeder = tokio::spawn(async move {
            // A frame every half read timeout: never silent for a whole one.
            for _ in 0..3 {
                tokio::time::sleep(DEFAULT_READ / 2).await;
                tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .unwrap();
            }
            // Then silent, the sender kept.
            std::future::pending::<()>().await;
        });
        for _ in 0..3 {
            assert_eq!(body.next().await.unwrap().unwrap(), "x");
        }
        let e = body.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(started.elapsed(), DEFAULT_READ / 2 * 3 + DEFAULT_READ);
        feeder.abort();
    }

    fn tokio_stream_of(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
    ) -> futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
    }

    #[tokio::test]
    async fn a_body_that_ends_ends_and_an_empty_one_has_no_frames() {
        let mut body = frames(vec![Ok(Frame::data(Bytes::from_static(b"{}")))], false);
        assert_eq!(body.next().await.unwrap().unwrap(), "{}");
        assert!(body.next().await.is_none());
        let mut empty = frames(Vec::new(), false);
        assert!(empty.next().await.is_none());
    }
}
