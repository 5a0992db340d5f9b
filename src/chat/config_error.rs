//! A configuration that cannot be built, with every problem found.

use std::error::Error as StdError;
use std::fmt;

/// A configuration that cannot be built. Lists every problem found, each with
/// the path of the setting it concerns (`routes.gpt-4o-mini.weights`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

/// One problem of a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a dotted path in the configuration, or the builder method.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A configuration error with one problem.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![Problem {
                path: path.into(),
                message: message.into(),
            }],
        }
    }

    /// Adds a problem, unless the same one (path and message) is listed:
    /// two checks that meet the same mistake report it once.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.add(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Adds every problem of `other` not listed yet.
    pub fn extend(&mut self, other: ConfigError) {
        for problem in other.problems {
            self.add(problem);
        }
    }

    fn add(&mut self, problem: Problem) {
        // Compared with the first problems only, so that a file with a
        // great many mistakes costs linear time, not quadratic.
        const COMPARED: usize = 1024;
        let head = &self.problems[..self.problems.len().min(COMPARED)];
        if !head.contains(&problem) {
            self.problems.push(problem);
        }
    }

    /// The problems.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The same problems, each with its path put under `prefix`.
    pub(crate) fn under(self, prefix: &str) -> ConfigError {
        let problems = self
            .problems
            .into_iter()
            .map(|p| Problem {
                path: join_path(prefix, &p.path),
                message: p.message,
            })
            .collect();
        ConfigError { problems }
    }

    /// `Ok(value)` when there is no problem, `Err(self)` otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigError> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// `path` under `prefix`: `prefix.path`, or `prefix` alone for an empty path.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match path {
        "" => prefix.to_owned(),
        rest => format!("{prefix}.{rest}"),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if p.path.is_empty() {
                f.write_str(&p.message)?;
            } else {
                write!(f, "{}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

impl StdError for ConfigError {}
