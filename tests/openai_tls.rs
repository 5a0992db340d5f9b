//! The provider clients' own HTTP client over TLS, against a local TLS
//! server on 127.0.0.1 (real sockets, test certificates in `tests/tls`):
//! the platform's verifier trusts what the system trusts (here a test CA,
//! through `SSL_CERT_FILE`, which it reads as the system's own store), HTTP/2
//! is used when the server offers it by ALPN, and a certificate nobody
//! trusts fails the call as `Connect` before any request is sent.
//!
//! One test in its own binary: `SSL_CERT_FILE` is set for the whole process.
//! Linux only: elsewhere the platform's verifier asks the OS, which does
//! not read `SSL_CERT_FILE`.
#![cfg(target_os = "linux")]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use llm_fallback::providers::openai::OpenAi;
use llm_fallback::{ChatRequest, ErrorKind, Message};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

const COMPLETION: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"over TLS"},"finish_reason":"stop"}]}"#;

/// What the server saw: requests served, and their HTTP versions.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    versions: Mutex<Vec<http::Version>>,
}

/// A TLS server on 127.0.0.1 presenting the certificate `name` of
/// `tests/tls`, offering `alpn`, answering every request with [`COMPLETION`].
async fn tls_server(name: &str, alpn: &[&[u8]]) -> (u16, Arc<Seen>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/");
    let cert = CertificateDer::from(std::fs::read(format!("{dir}{name}.der")).unwrap());
    let key =
        PrivateKeyDer::try_from(std::fs::read(format!("{dir}{name}.key.der")).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let served = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = served.clone();
            tokio::spawn(async move {
                // A handshake the client refuses ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    seen.requests.fetch_add(1, Ordering::SeqCst);
                    seen.versions.lock().unwrap().push(request.version());
                    async move {
                        let response = http::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(COMPLETION.as_bytes())))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let io = TokioIo::new(tls);
                let _ = match h2 {
                    true => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    }
                    false => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                    }
                };
            });
        }
    });
    (port, seen)
}

fn client(port: u16) -> OpenAi {
    OpenAi::builder()
        .base_url(format!("https://localhost:{port}/v1"))
        .api_key("sk-test-tls-0123456789")
        .build()
        .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest::new("m", [Message::user("hello")])
}

#[tokio::test]
async fn the_own_client_speaks_tls_and_http2_and_refuses_an_untrusted_certificate() {
    // The platform's verifier reads the system's trust store, which
    // honours SSL_CERT_FILE on Linux: here, the test CA alone. Set before
    // any client is built, in a binary of its own.
    std::env::set_var(
        "SSL_CERT_FILE",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/ca.pem"),
    );
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        std::env::remove_var(name);
    }

    // HTTP/2 offered: taken, over a verified connection.
    let (port, seen) = tls_server("localhost", &[b"h2", b"http/1.1"]).await;
    let h2 = client(port);
    for _ in 0..2 {
        let answer = h2
            .clone()
            .oneshot(request())
            .await
            .unwrap()
            .into_completion()
            .unwrap();
        assert_eq!(answer.choices[0].message.text(), "over TLS");
    }
    assert_eq!(
        *seen.versions.lock().unwrap(),
        [http::Version::HTTP_2, http::Version::HTTP_2]
    );

    // HTTP/1.1 only: spoken too.
    let (port, seen) = tls_server("localhost", &[b"http/1.1"]).await;
    let answer = client(port).oneshot(request()).await.unwrap();
    assert_eq!(answer.text().as_deref(), Some("over TLS"));
    assert_eq!(*seen.versions.lock().unwrap(), [http::Version::HTTP_11]);

    // A certificate no trust store holds: the handshake fails, as
    // `Connect`, saying why, and no request reaches the server.
    let (port, seen) = tls_server("untrusted", &[b"h2", b"http/1.1"]).await;
    let e = client(port).oneshot(request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.message().starts_with("connection failed"), "{e}");
    assert!(e.message().contains("certificate"), "{e}");
    assert!(!e.to_string().contains(&port.to_string()), "no URL in {e}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
}
