//! The secrets a LiteLLM file holds itself (keys written in it, its
//! `environment_variables`, a Redis URL made of host, port and password),
//! served to the stack under variable names the native config reads, so
//! that the native config never holds one and `--print` never shows one.

use std::collections::BTreeMap;
use std::fmt;

use super::read::Secret;

/// Where a variable the translation names gets its value.
#[derive(Clone)]
pub(crate) enum Source {
    /// A value written in the file.
    Literal(String),
    /// `redis://[:password@]host:port`, the password read when looked up.
    RedisUrl {
        host: String,
        port: u64,
        password: Option<Secret>,
    },
}

/// Variable name -> its value, consulted before the process's environment.
#[derive(Clone, Default)]
pub struct FileEnv {
    vars: BTreeMap<String, Source>,
}

impl fmt::Debug for FileEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names only: the values are keys.
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl FileEnv {
    /// Serves `source` as `name`.
    pub(crate) fn insert(&mut self, name: String, source: Source) {
        self.vars.insert(name, source);
    }

    /// The variables it serves (their names only).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// The value of `name`: this file's, else `env`'s.
    pub fn lookup(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let var = |name: &str| match self.vars.get(name) {
            Some(Source::Literal(value)) => Some(value.clone()),
            Some(Source::RedisUrl { .. }) | None => env(name),
        };
        match self.vars.get(name) {
            None | Some(Source::Literal(_)) => var(name),
            Some(Source::RedisUrl {
                host,
                port,
                password,
            }) => {
                let password = match password {
                    None => None,
                    Some(Secret::Literal(p)) => Some(p.clone()),
                    Some(Secret::Env(v)) => Some(var(v)?),
                };
                Some(match password {
                    Some(p) => format!("redis://:{}@{host}:{port}", escape_userinfo(&p)),
                    None => format!("redis://{host}:{port}"),
                })
            }
        }
        .filter(|v| !v.is_empty())
    }
}

/// A password as the userinfo of a URL may hold it.
fn escape_userinfo(password: &str) -> String {
    let mut out = String::with_capacity(password.len());
    for b in password.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_come_first_and_redis_urls_are_made_when_looked_up() {
        let mut env = FileEnv::default();
        env.insert("KEY".into(), Source::Literal("sk-file".into()));
        env.insert(
            "URL".into(),
            Source::RedisUrl {
                host: "127.0.0.1".into(),
                port: 6379,
                password: Some(Secret::Env("PW".into())),
            },
        );
        let process = |name: &str| match name {
            "KEY" => Some("sk-process".to_owned()),
            "PW" => Some("p@ss word".to_owned()),
            _ => None,
        };
        assert_eq!(env.lookup("KEY", &process).as_deref(), Some("sk-file"));
        assert_eq!(
            env.lookup("URL", &process).as_deref(),
            Some("redis://:p%40ss%20word@127.0.0.1:6379")
        );
        assert_eq!(env.lookup("URL", &|_| None), None);
        assert_eq!(format!("{env:?}"), r#"{"KEY", "URL"}"#);
    }
}
