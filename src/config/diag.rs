//! Diagnostics: a problem with a place (`file:line:col`) and, where one fits, a suggestion.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is: errors stop `check` and `run`, warnings are only printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration cannot be used as it is.
    Error,
    /// Worth fixing, but rekindle can run.
    Warning,
}

/// One problem found in the configuration, a template or the interaction log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place inside the file.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what to do, e.g. `unknown rule kind "quiett"; did you mean "quiet"?`.
    pub message: String,
}

impl Diagnostic {
    /// An error at a byte range of `source` (the text of `file`).
    pub(crate) fn error_at(file: &Path, source: &str, span: Range<usize>, message: String) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            position: Some(line_col(source, span.start)),
            message,
        }
    }

    /// An error about a whole file (or a database), with no line to point at.
    pub(crate) fn error_in(file: &Path, message: String) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            position: None,
            message,
        }
    }

    /// The same diagnostic, downgraded to a warning.
    pub(crate) fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// True for errors, false for warnings.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
/// A value the configuration cannot use, and why: the reason a diagnostic quotes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub(crate) String);

impl From<String> for Invalid {
    fn from(why: String) -> Self {
        Invalid(why)
    }
}

pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// `; did you mean "x"?` when one of `candidates` is close to `given`, else an empty string.
pub(crate) fn suggestion<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // "bé = " is 6 bytes but 5 characters: the quote is column 6.
        assert_eq!(line_col(src, src.find('"').unwrap_or(0)), (2, 6));
    }

    #[test]
    fn suggestion_finds_close_names_only() {
        assert_eq!(
            suggestion("quiett", ["quiet", "unhappy"]),
            "; did you mean \"quiet\"?"
        );
        assert_eq!(suggestion("zebra", ["quiet", "unhappy"]), "");
    }
}
