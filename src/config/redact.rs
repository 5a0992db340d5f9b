//! Parse errors that never echo a secret: the parsers quote the offending
//! source line (TOML) and the offending value (both), which may be the
//! `api_key = "sk-live-..."` a user pasted in.

/// What replaces a secret.
const HIDDEN: &str = "***";

/// A TOML error as the parser words it, with the source line and quoted
/// values replaced when they are, or sit next to, a secret.
#[cfg(feature = "toml")]
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = redact_message(e.message());
    let Some(span) = e.span() else {
        return format!("invalid TOML: {message}");
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let line = text
        .lines()
        .nth(line_no - 1)
        .unwrap_or("")
        .trim_end_matches('\r');
    let shown = if secret_line(line) {
        redact_line(line)
    } else {
        line.to_owned()
    };
    let gutter = " ".repeat(line_no.to_string().len());
    format!("invalid TOML at line {line_no}, column {column}: {message}\n{gutter} |\n{line_no} | {shown}")
}

/// A JSON error with quoted values that look secret replaced.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    format!("invalid JSON: {}", redact_message(&e.to_string()))
}

#[cfg(feature = "toml")]
/// Whether `line` names a secret (`api_key = ...`, `password`, a variable
/// name that should have been a name) or holds a value that looks like one.
fn secret_line(line: &str) -> bool {
    let mut parts = line.split('=').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_some() && secret_name(key_before(part)) {
            return true;
        }
    }
    line.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}'))
        .any(looks_secret)
}

#[cfg(feature = "toml")]
/// The key that ends `part` (the text before an `=`).
fn key_before(part: &str) -> &str {
    let part = part.trim_end();
    let start = part
        .char_indices()
        .rfind(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    &part[start..]
}

#[cfg(feature = "toml")]
/// Names such as `api_key`, `apiKey`, `password`, `client_secret`, `url_env`.
fn secret_name(key: &str) -> bool {
    const WORDS: [&str; 14] = [
        "key",
        "keys",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pass",
        "pwd",
        "token",
        "auth",
        "authorization",
        "credential",
        "bearer",
        "env",
    ];
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    let lower = key.to_ascii_lowercase();
    lower.contains("apikey")
        || lower.contains("secret")
        || lower.contains("password")
        || (lower.split(['_', '-', '.']).any(|w| WORDS.contains(&w)))
        || key.ends_with("Key")
}

/// A key (`sk-...`, or a long run of letters and digits) or a URL with a password.
fn looks_secret(token: &str) -> bool {
    let token = token.trim_matches(|c: char| matches!(c, '"' | '\'' | '`' | ',' | ';'));
    if let Some((_, rest)) = token.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        return authority.contains('@');
    }
    let has = |f: fn(&char) -> bool| token.chars().any(|c| f(&c));
    token.starts_with("sk-")
        || token.starts_with("sk_")
        || (token.len() >= 20
            && has(char::is_ascii_digit)
            && has(char::is_ascii_alphabetic)
            && !token.contains(char::is_whitespace))
}

#[cfg(feature = "toml")]
/// `key = ***`: everything after the first `=` hidden (the whole line if none).
fn redact_line(line: &str) -> String {
    match line.split_once('=') {
        Some((key, _)) => format!("{key}= {HIDDEN}"),
        None => HIDDEN.to_owned(),
    }
}

/// The message with its quoted values hidden where they look secret.
fn redact_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        let Some(len) = rest[open + 1..].find(quote) else {
            break;
        };
        let inner = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..=open]);
        out.push_str(if looks_secret(inner) { HIDDEN } else { inner });
        out.push(quote);
        rest = &rest[open + 2 + len..];
    }
    if looks_secret(rest) {
        // An unterminated quote: keep the text up to it only.
        out.push_str(HIDDEN);
    } else {
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "toml")]
    fn secret_names_and_values_are_recognised() {
        for name in [
            "api_key",
            "apiKey",
            "password",
            "client_secret",
            "url_env",
            "env_list",
            "api_key_env",
            "\"api-key\"",
        ] {
            assert!(secret_name(name), "{name}");
        }
        for name in ["max_tokens", "base_url", "model", "tier", "monkey"] {
            assert!(!secret_name(name), "{name}");
        }
        for value in [
            "sk-live-1",
            "redis://:pw@host:6379",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(looks_secret(value), "{value}");
        }
        for value in [
            "redis://127.0.0.1:6379",
            "https://api.openai.com/v1",
            "gpt-4o-mini",
            "30s",
        ] {
            assert!(!looks_secret(value), "{value}");
        }
    }

    #[test]
    #[cfg(feature = "toml")]
    fn lines_with_any_characters_are_judged_without_panicking() {
        assert!(secret_line("é§api_key = 1"));
        assert!(!secret_line("名前 = \"値\""));
    }

    #[test]
    fn messages_keep_harmless_quotes_and_hide_secret_ones() {
        assert_eq!(
            redact_message("invalid type: string \"sk-live-abc\", expected u32"),
            "invalid type: string \"***\", expected u32"
        );
        assert_eq!(
            redact_message("unknown field `api_key`, expected `api_key_env`"),
            "unknown field `api_key`, expected `api_key_env`"
        );
    }
}
