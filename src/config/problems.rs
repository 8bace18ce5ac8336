//! Problems found in configuration and data files, each naming where it is and how to fix it.

use std::fmt;

/// One thing wrong with a file ssp-sim reads at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as the user would type it.
    pub file: String,
    /// 1-based line, when the problem sits on one.
    pub line: Option<usize>,
    /// The key or table path, e.g. `provider[0].endpoint[1].backend`.
    pub key: Option<String>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load, so a user fixes them all in one pass.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// Every problem, in the order found; never empty.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// A single problem with no line or key.
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                file: file.to_owned(),
                line: None,
                key: None,
                message: message.into(),
            }],
        }
    }

    /// A TOML syntax or shape error, with the line the parser points at.
    pub fn toml(file: &str, source: &str, err: &toml::de::Error) -> Self {
        Self {
            problems: vec![Problem {
                file: file.to_owned(),
                line: err.span().map(|s| line_of(source, s.start)),
                key: None,
                message: err.message().trim().to_owned(),
            }],
        }
    }
}

/// Collects problems while a file is validated.
#[derive(Debug)]
pub struct Problems<'a> {
    file: &'a str,
    source: &'a str,
    found: Vec<Problem>,
}

impl<'a> Problems<'a> {
    /// Collects the problems of `file`, whose text `source` spans and lines are counted in.
    pub fn new(file: &'a str, source: &'a str) -> Self {
        Self {
            file,
            source,
            found: Vec::new(),
        }
    }

    /// Records a problem at a byte span of the source (from `toml::Spanned`).
    pub fn at(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.found.push(Problem {
            file: self.file.to_owned(),
            line: Some(line_of(self.source, span.start)),
            key: Some(key.into()),
            message: message.into(),
        });
    }

    /// The problems found, or `Ok(value)` when there were none.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError {
                problems: self.found,
            })
        }
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(source: &str, offset: usize) -> usize {
    source.as_bytes()[..offset.min(source.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
