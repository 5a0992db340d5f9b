//! Live reload of the gateway's config (issue #17): a [`Reloader`] serving
//! a config file on 127.0.0.1 in front of mock provider servers, reloaded
//! by call, by the file watch and by `POST /admin/reload`. Real time (real
//! sockets and a real file watch); waits poll for their condition.
#![cfg(all(
    feature = "reload",
    feature = "mock",
    feature = "openai",
    feature = "toml"
))]

mod admin;
mod load;
mod state;
mod validity;
mod watch;

#[path = "../waiting/mod.rs"]
mod waiting;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use llm_fallback::server;
use llm_fallback::stack::Reloader;
use reqwest::Response;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub(crate) const KEY: &str = "gw-reload-key";

/// A config file in a directory of its own, removed on drop.
pub(crate) struct ConfigFile {
    dir: PathBuf,
    pub(crate) path: PathBuf,
}

impl ConfigFile {
    pub(crate) fn new(toml: &str) -> ConfigFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("llm-fallback-reload-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(&path, toml).unwrap();
        ConfigFile { dir, path }
    }

    /// Saves as editors do: a new file written beside it, renamed over it.
    pub(crate) fn save_atomically(&self, toml: &str) {
        let temp = self.dir.join(".gateway.toml.swp");
        std::fs::write(&temp, toml).unwrap();
        std::fs::rename(&temp, &self.path).unwrap();
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A gateway serving a config file on 127.0.0.1:0 until dropped.
pub(crate) struct Gateway {
    pub(crate) reloader: Reloader,
    pub(crate) file: ConfigFile,
    base: String,
    pub(crate) http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Gateway {
    pub(crate) async fn start(toml: &str) -> Gateway {
        let file = ConfigFile::new(toml);
        let env = |var: &str| match var {
            "GW_KEY" => Some(KEY.to_owned()),
            "MOCK_KEY" => Some("key-one".to_owned()),
            "MOCK_KEY_TWO" => Some("key-two".to_owned()),
            _ => None,
        };
        let reloader = Reloader::open_with_env(&file.path, env)
            .unwrap_or_else(|e| panic!("the config is valid:\n{e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::serve(
            listener,
            reloader.router(),
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Gateway {
            reloader,
            file,
            base,
            http: reqwest::Client::new(),
            _stop: stop,
        }
    }

    /// Writes `toml` over the config file (in place: nothing watches it
    /// unless the test started a watch).
    pub(crate) fn write(&self, toml: &str) {
        std::fs::write(&self.file.path, toml).unwrap();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn chat(&self, model: &str) -> Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        let request = self.http.get(self.url(path)).bearer_auth(KEY);
        request.send().await.unwrap()
    }

    pub(crate) async fn ready(&self) -> Value {
        self.get("/health/ready").await.json().await.unwrap()
    }
}

/// A config with one provider on `base` (an OpenAI-compatible mock) and
/// the routes given as TOML lines; breakers trip on one failure and stay
/// open an hour; no retries.
pub(crate) fn config(base: &str, routes: &str, extra: &str) -> String {
    format!(
        r#"
        [providers.mock]
        kind = "openai"
        base_url = "{base}"
        api_key_env = "MOCK_KEY"

        [routes]
        {routes}

        [retry]
        max_retries = 0
        [cooldown]
        consecutive_failures = 1
        cooldown = "1h"
        adaptive_throttle = false
        [server]
        api_key_env = "GW_KEY"
        {extra}
        "#
    )
}

pub(crate) fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers().get(name).map_or("", |v| v.to_str().unwrap())
}
