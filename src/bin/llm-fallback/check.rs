//! `llm-fallback check`: build everything a config describes without
//! serving, print it, and list the environment variables it reads.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use llm_fallback::layers::fallback::FallbackGroups;
use llm_fallback::{Config, Stack};

use crate::serve::DEFAULT_LISTEN;
use crate::Env;

/// Checks `config` (from `source`), reading variables with `env`; prints
/// to stdout, problems to stderr. With `print`, stdout gets the config as
/// TOML only (valid or not), and the rest goes to stderr.
pub(crate) fn run(config: &Config, source: &str, env: Env, print: bool) -> ExitCode {
    // Every variable the build looks up, and whether it was set; the values
    // stay in the build.
    let seen: Arc<Mutex<BTreeMap<String, bool>>> = Arc::default();
    let record = Arc::clone(&seen);
    let built = Stack::builder()
        .config(config.clone())
        .env(move |var| {
            let value = env(var).filter(|v| !v.is_empty());
            let mut seen = record.lock().unwrap_or_else(|e| e.into_inner());
            seen.insert(var.to_owned(), value.is_some());
            value
        })
        .build();
    // With --print, the native config is printed even when it has problems:
    // their paths are its paths.
    let printed = match print {
        true => match config.to_toml_string() {
            Ok(toml) => {
                print!("{toml}");
                true
            }
            Err(e) => {
                eprintln!("llm-fallback: {e}");
                false
            }
        },
        false => true,
    };
    let code = match built {
        Ok(_) if print => {
            eprintln!("{source} is valid; its native config is on stdout.");
            if printed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(stack) => {
            println!("{source} is valid.");
            print_stack(&stack);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let n = e.problems().len();
            let s = if n == 1 { "" } else { "s" };
            let paths = match print {
                true => " (paths of the native config on stdout)",
                false => "",
            };
            eprintln!("llm-fallback: {n} problem{s} in {source}{paths}:\n{e}");
            ExitCode::FAILURE
        }
    };
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    match print {
        true => eprint!("{}", describe_env(&seen)),
        false => print!("{}", describe_env(&seen)),
    }
    code
}

fn print_stack(stack: &Stack) {
    println!("Providers:\n{}", stack.describe_providers());
    println!("Routes:\n{}", stack.describe_routes());
    println!("Fallback groups:\n{}", stack.describe_fallback_groups());
    let listen = stack.listen_addr().map_or(
        format!(" (serving on {DEFAULT_LISTEN}, the default)"),
        |_| String::new(),
    );
    println!("Server: {}{listen}", stack.describe_server());
    println!("Store: {}", stack.describe_store());
    println!("Timeouts: {}", stack.describe_timeouts());
    println!("Traces: {}", crate::traces::describe());
    println!("Models served: {}", stack.models().join(", "));
}

/// `Environment variables read:` and one line per variable: set, or not.
fn describe_env(seen: &BTreeMap<String, bool>) -> String {
    if seen.is_empty() {
        return "Environment variables read: none\n".to_owned();
    }
    let width = seen.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::from("Environment variables read:\n");
    for (var, set) in seen {
        let state = match (set, var == FallbackGroups::ENV_VAR) {
            (true, _) => "set",
            (false, true) => "not set (optional)",
            (false, false) => "MISSING",
        };
        out.push_str(&format!("  {var:width$}  {state}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_stand_out_and_the_groups_variable_is_optional() {
        let seen = BTreeMap::from([
            ("OPENAI_API_KEY".to_owned(), true),
            ("ANTHROPIC_API_KEY".to_owned(), false),
            (FallbackGroups::ENV_VAR.to_owned(), false),
        ]);
        assert_eq!(
            describe_env(&seen),
            "Environment variables read:\n  \
             ANTHROPIC_API_KEY      MISSING\n  \
             MODEL_FALLBACK_GROUPS  not set (optional)\n  \
             OPENAI_API_KEY         set\n"
        );
    }
}
