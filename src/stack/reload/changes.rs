//! What a reload changed, for its log line: routes and providers added,
//! removed or changed.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::Config;
use crate::Stack;

/// Names added, removed and changed between two maps.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Diff {
    pub(super) added: Vec<String>,
    pub(super) removed: Vec<String>,
    pub(super) changed: Vec<String>,
}

impl Diff {
    fn between<V: PartialEq>(old: &BTreeMap<String, V>, new: &BTreeMap<String, V>) -> Diff {
        let mut diff = Diff::default();
        for (name, value) in new {
            match old.get(name) {
                None => diff.added.push(name.clone()),
                Some(before) if before != value => diff.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        diff.removed = (old.keys())
            .filter(|n| !new.contains_key(*n))
            .cloned()
            .collect();
        diff
    }
}

/// `+added -removed ~changed`, names escaped; `none` when nothing changed.
impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (sign, names) in [
            ('+', &self.added),
            ('-', &self.removed),
            ('~', &self.changed),
        ] {
            for name in names {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                write!(f, "{sign}{}", name.escape_debug())?;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// What one reload changed.
#[derive(Debug)]
pub(super) struct Changes {
    /// By alias: a route changed when its settings or its candidates did.
    pub(super) routes: Diff,
    /// By name: a provider changed when its settings or a key's value did.
    pub(super) providers: Diff,
    /// `[server]` changed: most of it applies on restart only.
    pub(super) server: bool,
    /// `[store]` changed: new stores, every breaker and count afresh.
    pub(super) store: bool,
}

impl Changes {
    pub(super) fn between(old: (&Config, &Stack), new: (&Config, &Stack)) -> Changes {
        let routes = |(config, stack): (&Config, &Stack)| -> BTreeMap<String, String> {
            (stack.routes().iter())
                .map(|(alias, candidates)| {
                    let settings = config.routes.get(alias);
                    let settings = settings.and_then(|r| serde_json::to_string(r).ok());
                    (alias.clone(), format!("{candidates:?} {settings:?}"))
                })
                .collect()
        };
        Changes {
            routes: Diff::between(&routes(old), &routes(new)),
            providers: Diff::between(&old.1.info.fingerprints, &new.1.info.fingerprints),
            server: old.0.server != new.0.server,
            store: old.0.store != new.0.store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, u32)]) -> BTreeMap<String, u32> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn a_diff_names_what_was_added_removed_and_changed() {
        let old = map(&[("a", 1), ("b", 2), ("c", 3)]);
        let new = map(&[("a", 1), ("c", 4), ("d", 5)]);
        let diff = Diff::between(&old, &new);
        assert_eq!(diff.to_string(), "+d -b ~c");
        assert_eq!(Diff::between(&old, &old).to_string(), "none");
    }

    #[test]
    fn names_are_escaped_in_the_log_line() {
        let diff = Diff::between(&map(&[]), &map(&[("x\ny", 1)]));
        assert_eq!(diff.to_string(), "+x\\ny");
    }
}
