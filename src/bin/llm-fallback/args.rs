//! The command line, parsed by hand: four commands and four options do not
//! earn clap's compile time.

use std::net::SocketAddr;
use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
llm-fallback: an OpenAI-compatible gateway with timeouts, retries, cooldowns,
weighted balancing and fallback across providers.

usage: llm-fallback [COMMAND] [OPTIONS]

commands:
  serve      serve the gateway (the default)
  check      validate the config, print what it builds and the environment
             variables it reads, and exit (non-zero on any problem)
  version    print the version and exit
  help       print this help and exit

options:
  --config PATH        a .toml, .json or .yaml config (default: the embedded demo,
                       two simulated providers on 127.0.0.1, no API key needed)
  --litellm-config PATH
                       a LiteLLM proxy config.yaml, run as it is (what it sets
                       that is not honoured is listed in one warning)
  --print              with check: print the equivalent native config as TOML
                       on stdout (the rest goes to stderr)
  --listen ADDR        serve on ADDR (default: server.listen, else 127.0.0.1:8080)
  --log-format FORMAT  text or json (default: text when stderr is a terminal,
                       json otherwise); logs go to stderr, without colours when
                       NO_COLOR is set or stderr is not a terminal
  -h, --help           print this help
  -V, --version        print the version

signals:
  SIGINT, SIGTERM      stop, letting answers in flight finish
  SIGHUP               reload the --config file (also reloaded when it is saved)

environment:
  RUST_LOG             what is logged, e.g. `warn` or `info,llm_fallback=debug` (default: info)";

/// What to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Command {
    #[default]
    Serve,
    Check,
    Version,
    Help,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The parsed command line.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Args {
    pub(crate) command: Command,
    pub(crate) config: Option<PathBuf>,
    /// A LiteLLM `config.yaml`, instead of `config`.
    pub(crate) litellm_config: Option<PathBuf>,
    /// `check --print`: the native config as TOML on stdout.
    pub(crate) print: bool,
    pub(crate) listen: Option<SocketAddr>,
    /// `None`: decided by whether stderr is a terminal.
    pub(crate) log_format: Option<LogFormat>,
}

/// Parses the arguments after the program name. Options may come before or
/// after the command; `--opt=value` and `--opt value` both work.
pub(crate) fn parse<I>(args: I) -> Result<Args, String>
where
    I: IntoIterator<Item = String>,
{
    let mut out = Args::default();
    let mut command = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .map(str::to_owned)
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let set = |command: &mut Option<Command>, c: Command| match command.replace(c) {
            Some(old) if old != c => Err(format!("two commands given: {old:?} and {c:?}")),
            _ => Ok(()),
        };
        match flag.as_str() {
            "serve" => set(&mut command, Command::Serve)?,
            // `--check` is the example's old spelling.
            "check" | "--check" => set(&mut command, Command::Check)?,
            "version" | "-V" | "--version" => set(&mut command, Command::Version)?,
            "help" | "-h" | "--help" => set(&mut command, Command::Help)?,
            "--config" => out.config = Some(value("--config")?.into()),
            "--litellm-config" => {
                out.litellm_config = Some(value("--litellm-config")?.into());
            }
            "--print" => out.print = true,
            "--listen" => {
                let addr = value("--listen")?;
                out.listen = Some(addr.parse().map_err(|_| {
                    format!("--listen: {addr:?} is not an address like 127.0.0.1:8080")
                })?);
            }
            "--log-format" => {
                out.log_format = Some(match value("--log-format")?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(format!("--log-format: {other:?} is not text or json")),
                });
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    out.command = command.unwrap_or_default();
    if out.config.is_some() && out.litellm_config.is_some() {
        return Err("give --config or --litellm-config, not both".to_owned());
    }
    if out.print && out.command != Command::Check {
        return Err("--print goes with check".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn no_arguments_serve_the_demo() {
        assert_eq!(parse_str("").unwrap(), Args::default());
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = parse_str("--config a.toml check --log-format=json").unwrap();
        assert_eq!(a.command, Command::Check);
        assert_eq!(a.config, Some(PathBuf::from("a.toml")));
        assert_eq!(a.log_format, Some(LogFormat::Json));
        let b = parse_str("serve --listen=0.0.0.0:9000 --config=b.json").unwrap();
        assert_eq!(b.command, Command::Serve);
        assert_eq!(b.listen, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(b.config, Some(PathBuf::from("b.json")));
    }

    #[test]
    fn a_litellm_config_is_served_or_checked_and_printed() {
        let a = parse_str("check --litellm-config config.yaml --print").unwrap();
        assert_eq!(a.litellm_config, Some(PathBuf::from("config.yaml")));
        assert!(a.print && a.config.is_none());
        let b = parse_str("serve --litellm-config=c.yaml").unwrap();
        assert_eq!(
            (b.command, b.litellm_config),
            (Command::Serve, Some(PathBuf::from("c.yaml")))
        );
        let e = |line| parse_str(line).unwrap_err();
        assert!(e("--config a.toml --litellm-config b.yaml").contains("not both"));
        assert_eq!(e("serve --print"), "--print goes with check");
        assert_eq!(e("--litellm-config"), "--litellm-config needs a value");
    }

    #[test]
    fn the_old_check_flag_still_checks() {
        assert_eq!(
            parse_str("--config x.toml --check").unwrap().command,
            Command::Check
        );
    }

    #[test]
    fn help_and_version_have_short_forms() {
        assert_eq!(parse_str("-h").unwrap().command, Command::Help);
        assert_eq!(parse_str("-V").unwrap().command, Command::Version);
        assert_eq!(parse_str("version").unwrap().command, Command::Version);
    }

    #[test]
    fn mistakes_are_named() {
        let e = |line| parse_str(line).unwrap_err();
        assert_eq!(e("--config"), "--config needs a value");
        assert!(e("--listen localhost").contains("not an address"));
        assert!(e("--log-format yaml").contains("\"yaml\" is not text or json"));
        assert_eq!(e("--confg x"), "unknown argument \"--confg\"");
        assert!(e("serve check").contains("two commands"));
    }
}
