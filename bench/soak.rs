//! Soak test: the whole gateway (a `Stack` built from a config + the HTTP server on
//! 127.0.0.1) in front of three OpenAI-compatible mock providers that fail at
//! random (seeded), driven by an HTTP client with bounded concurrency.
//!
//! ```sh
//! cargo run --release --example soak -- [--requests 10000] [--concurrency 32] [--seed 1] [--scenario all]
//! ```
//!
//! Scenarios: `scattered-15` and `scattered-50` (every provider fails that
//! share of calls, independently), `one-down` (the first candidate of the
//! route fails every call, the others are healthy), `all-down` (every call
//! fails). Half the requests stream. For each it prints the success rate
//! (non-streaming and streaming), upstream calls per request (overall, and
//! after the first tenth of the run, once breakers have had time to open),
//! latency p50/p99, each provider's calls, and the theoretical success rate
//! of trying the candidates in turn. docs/SOAK.md has the numbers.

use std::time::Duration;

use futures_util::StreamExt;
use llm_fallback::mock::{MockServer, RandomReplies, ServerReply};
use llm_fallback::{Config, Stack};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The model every provider serves.
const MODEL: &str = "m";
/// How long a cooling model stays open (the issue's setting).
const COOLDOWN: Duration = Duration::from_secs(2);
const ANSWER: &str = "one two three four five six seven eight";

/// The faults, equally likely among themselves. `retried` says whether the
/// default retry policy retries it on the same model.
fn faults() -> Vec<(&'static str, ServerReply, bool)> {
    let stall = ServerReply::text(ANSWER)
        .in_chunks(8)
        .stall_after(3, Duration::from_secs(2));
    vec![
        ("500", ServerReply::status(500), true),
        ("502", ServerReply::status(502), true),
        ("503", ServerReply::status(503), true),
        (
            "429",
            ServerReply::error(429, "rate_limit_exceeded", "slow down"),
            true,
        ),
        (
            "401",
            ServerReply::error(401, "invalid_api_key", "bad key"),
            false,
        ),
        ("reset", ServerReply::reset(), true),
        ("timeout", ServerReply::hang(), false),
        ("stall", stall, false),
    ]
}

/// A provider failing `rate` of its calls.
fn provider(rate: f64, seed: u64) -> RandomReplies {
    let faults = faults();
    let each = rate / faults.len() as f64;
    let mut replies =
        RandomReplies::seeded(seed).with(1.0 - rate, ServerReply::text(ANSWER).in_chunks(8));
    for (_, reply, _) in faults {
        replies = replies.with(each, reply);
    }
    replies
}

struct Scenario {
    name: &'static str,
    rates: [f64; 3],
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "scattered-15",
        rates: [0.15; 3],
    },
    Scenario {
        name: "scattered-50",
        rates: [0.5; 3],
    },
    Scenario {
        name: "one-down",
        rates: [1.0, 0.0, 0.0],
    },
    Scenario {
        name: "all-down",
        rates: [1.0; 3],
    },
];

fn config(servers: &[MockServer], seed: u64) -> Config {
    let toml = format!(
        r#"
        seed = {seed}
        [providers.p1]
        kind = "openai"
        base_url = "{}"
        api_key_env = "SOAK_KEY_1"
        [providers.p2]
        kind = "openai"
        base_url = "{}"
        api_key_env = "SOAK_KEY_2"
        [providers.p3]
        kind = "openai"
        base_url = "{}"
        api_key_env = "SOAK_KEY_3"

        [routes]
        soak = ["p1/{MODEL}", "p2/{MODEL}", "p3/{MODEL}"]

        [fallback]
        recover_streams = true

        [timeout]
        total = "5s"
        attempt = "250ms"
        headers = "250ms"
        first_token = "250ms"
        idle = "250ms"

        [retry]
        max_retries = 1
        backoff = {{ base = "5ms", factor = 2.0, cap = "20ms", jitter = "full" }}

        [cooldown]
        cooldown = "{}ms"
        "#,
        servers[0].base_url(),
        servers[1].base_url(),
        servers[2].base_url(),
        COOLDOWN.as_millis(),
    );
    Config::from_toml_str(&toml).expect("the soak config is valid")
}

/// One client request's outcome.
struct Outcome {
    stream: bool,
    ok: bool,
    latency: Duration,
}

async fn request(client: &reqwest::Client, url: &str, stream: bool) -> Outcome {
    let started = Instant::now();
    let body = json!({
        "model": "soak",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    });
    let ok = match client.post(url).json(&body).send().await {
        Ok(response) if response.status().is_success() => match response.text().await {
            // A stream is an answer only if it ends with [DONE] and no error event.
            Ok(text) if stream => {
                text.ends_with("data: [DONE]\n\n") && !text.contains("data: {\"error\"")
            }
            Ok(text) => serde_json::from_str::<Value>(&text)
                .is_ok_and(|v| v["choices"][0]["message"]["content"] == ANSWER),
            Err(_) => false,
        },
        _ => false,
    };
    Outcome {
        stream,
        ok,
        latency: started.elapsed(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn pct(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of.max(1) as f64
}

/// Success of trying `k` candidates in turn, each failing with `p`; and of
/// the same with one retry of the retried faults on each candidate.
fn theory(rates: [f64; 3]) -> (f64, f64) {
    let faults = faults();
    let retried = faults.iter().filter(|f| f.2).count() as f64 / faults.len() as f64;
    let in_turn: f64 = rates.iter().product();
    let with_retry: f64 = rates
        .iter()
        .map(|p| p * ((1.0 - retried) + retried * p))
        .product();
    (1.0 - in_turn, 1.0 - with_retry)
}

async fn run(scenario: &Scenario, requests: usize, concurrency: usize, seed: u64) {
    let mut servers = Vec::new();
    for (i, rate) in scenario.rates.iter().enumerate() {
        let server = MockServer::start().await;
        server.always_random(MODEL, provider(*rate, seed * 10 + i as u64));
        servers.push(server);
    }
    let stack = Stack::builder()
        .config(config(&servers, seed))
        .env(|var| var.starts_with("SOAK_KEY_").then(|| format!("sk-{var}")))
        .build()
        .expect("the soak stack builds");
    let router = stack.server().build().expect("the server builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(llm_fallback::server::serve(
        listener,
        router,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::new();
    let calls = || servers.iter().map(|s| s.calls().len()).sum::<usize>();

    // The first tenth lets breakers open; calls per request are also
    // reported for the rest alone.
    let warmup = requests / 10;
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(requests);
    let mut at_warmup = (Vec::new(), started);
    for (from, to) in [(0, warmup), (warmup, requests)] {
        let batch: Vec<Outcome> = futures_util::stream::iter(from..to)
            .map(|i| request(&client, &url, i % 2 == 1))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        outcomes.extend(batch);
        if from == 0 {
            at_warmup = (
                servers.iter().map(|s| s.calls().len()).collect(),
                Instant::now(),
            );
        }
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = serving.await;

    let total_calls = calls();
    let per_provider: Vec<usize> = servers.iter().map(|s| s.calls().len()).collect();
    let calls_after_warmup: usize = at_warmup.0.iter().sum();
    let periods_after_warmup = at_warmup.1.elapsed().as_secs_f64() / COOLDOWN.as_secs_f64();
    let (json, streams): (Vec<&Outcome>, Vec<&Outcome>) = outcomes.iter().partition(|o| !o.stream);
    let ok = |v: &[&Outcome]| v.iter().filter(|o| o.ok).count();
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort();
    let (in_turn, with_retry) = theory(scenario.rates);

    println!("## {}", scenario.name);
    println!(
        "fault rates {:?}, {requests} requests ({} streaming), concurrency {concurrency}, seed {seed}, {:.1} s",
        scenario.rates,
        streams.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "success: non-streaming {:.2} %, streaming {:.2} %, all {:.2} %",
        pct(ok(&json), json.len()),
        pct(ok(&streams), streams.len()),
        pct(ok(&json) + ok(&streams), outcomes.len()),
    );
    println!(
        "theory (candidates in turn, 1 - p^3): {:.2} %; with one retry of retried faults: {:.2} %",
        100.0 * in_turn,
        100.0 * with_retry
    );
    println!(
        "upstream calls per request: {:.3} overall, {:.3} after the first {warmup} requests",
        total_calls as f64 / requests as f64,
        (total_calls - calls_after_warmup) as f64 / (requests - warmup).max(1) as f64,
    );
    println!(
        "latency: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    for (i, n) in per_provider.iter().enumerate() {
        let later = n - at_warmup.0[i];
        println!(
            "p{}: {n} calls; after the first {warmup} requests {later} ({:.1} per {} s cooldown period)",
            i + 1,
            later as f64 / periods_after_warmup,
            COOLDOWN.as_secs()
        );
    }
    println!();
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests = arg(&args, "--requests", 10_000usize).max(10);
    let concurrency = arg(&args, "--concurrency", 32usize).max(1);
    let seed = arg(&args, "--seed", 1u64);
    let only = arg(&args, "--scenario", "all".to_owned());
    for scenario in SCENARIOS.iter().filter(|s| only == "all" || s.name == only) {
        run(scenario, requests, concurrency, seed).await;
    }
}
