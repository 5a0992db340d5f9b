//! The official OpenAI Python client through the gateway (skipped when
//! it is not installed).

use super::*;

/// The Python with the OpenAI client: `.ci/run`'s venv under `target/python`
/// when there is one, else `python3` from `PATH`.
fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/python/bin/python3");
    if std::path::Path::new(venv).exists() {
        venv.to_owned()
    } else {
        "python3".to_owned()
    }
}

/// Whether [`python`] has the official OpenAI client. `test` skips, saying
/// so, when it does not; under `CI=true` a missing client fails instead.
async fn has_python_openai(test: &str) -> bool {
    let python = python();
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .await;
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match &probe {
            Ok(o) => (String::from_utf8_lossy(&o.stderr).lines().last())
                .unwrap_or("import failed")
                .to_owned(),
            Err(e) => format!("cannot run {python}: {e}"),
        };
        let message = format!(
            "the OpenAI Python client is not installed ({why}); \
             `.ci/run` installs it in target/python, or `python3 -m pip install openai`"
        );
        // CI must run this test: a missing client fails the run there.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and {message}"
        );
        // Elsewhere the skip shows in `cargo test`'s output: written to the
        // stderr stream itself, which the test harness does not capture.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {message}");
        return false;
    }
    true
}

/// Runs tests/python/compat.py against `gw` with `args` after the URL and key.
async fn compat_py(gw: &Gateway, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/compat.py");
    let out = tokio::process::Command::new(python())
        .args([script, &format!("{}/v1", gw.base), KEY])
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compat.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    stdout
}

#[tokio::test]
async fn the_official_openai_python_client_works_through_fallback_routes() {
    if !has_python_openai("the_official_openai_python_client_works_through_fallback_routes").await {
        return;
    }
    let (gw, _primary, _backup) = fixture().await;
    let stdout = compat_py(&gw, &[]).await;
    println!("compat.py: {stdout}");
}

#[tokio::test]
async fn the_python_client_at_its_default_retries_sends_one_request_per_failed_call() {
    if !has_python_openai(
        "the_python_client_at_its_default_retries_sends_one_request_per_failed_call",
    )
    .await
    {
        return;
    }
    let (gw, primary, backup) = fixture().await;
    compat_py(&gw, &["default-retries"]).await;
    // One call to an all-failing route and one to an all-limited route.
    assert_eq!(
        gw.chats.load(Ordering::Relaxed),
        2,
        "the SDK did not retry what the gateway already retried"
    );
    for model in ["broken", "limited"] {
        let upstream = primary.call_count(model) + backup.call_count(model);
        assert_eq!(upstream, 2, "{model}: one call per candidate");
    }
}
