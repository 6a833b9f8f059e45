//! [`SpecError`]: one problem with a `runway.toml`, located and explained.
//!
//! The people reading these errors are fixing a config file in an editor, so every error
//! carries the file, 1-based line and column, and renders a rustc-like snippet with a
//! caret under the offending text plus (usually) a hint saying what to write instead:
//!
//! ```text
//! runway.toml:7:12: error: replicas must be at least 1
//!   |
//! 7 | replicas = 0
//!   |            ^
//!   = hint: set replicas = 1 or more
//! ```
//!
//! The error stores the offending source line itself, so it can be displayed long after
//! the file text is gone (e.g. after being returned across the CLI's layers).

use std::fmt;
use std::ops::Range;
use std::path::Path;

/// Width used to display a tab in the snippet, so the caret lines up.
const TAB_WIDTH: usize = 4;

/// A located, user-facing error in a `runway.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file name shown in the message, e.g. `runway.toml`.
    pub origin: String,
    /// 1-based line of the offending text; 0 when the error has no location (e.g. the
    /// file could not be read).
    pub line: usize,
    /// 1-based column (in characters) of the offending text; 0 when `line` is 0.
    pub col: usize,
    /// What is wrong, as one sentence without a trailing period.
    pub message: String,
    /// What to do about it, when there is something useful to say.
    pub hint: Option<String>,
    /// The text of line `line` (without its line break), shown in the snippet; `None`
    /// when the error has no location.
    pub source_line: Option<String>,
    /// How many characters, starting at `col`, the caret line underlines (at least 1).
    pub width: usize,
}

impl SpecError {
    /// An error about the bytes `span` of `text` (clamped to the text, and to the first
    /// line of the span for underlining).
    pub(crate) fn at(
        origin: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let start = floor_char_boundary(text, span.start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        SpecError {
            origin: origin.to_owned(),
            line: text[..start].matches('\n').count() + 1,
            col: text[line_start..start].chars().count() + 1,
            message: message.into(),
            hint,
            source_line: Some(text[line_start..line_end].trim_end_matches('\r').to_owned()),
            width: text[start..end].chars().count().max(1),
        }
    }

    /// An error that has no position in the file.
    pub(crate) fn unlocated(
        origin: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        SpecError {
            origin: origin.to_owned(),
            line: 0,
            col: 0,
            message: message.into(),
            hint,
            source_line: None,
            width: 0,
        }
    }

    /// The file's bytes are not UTF-8: located at the first bad byte.
    pub(crate) fn not_utf8(origin: &str, bytes: &[u8], error: &std::str::Utf8Error) -> Self {
        let valid = error.valid_up_to();
        let prefix = std::str::from_utf8(bytes.get(..valid).unwrap_or(&[])).unwrap_or("");
        let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
        let line_end = bytes
            .iter()
            .skip(valid)
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| valid + i);
        let line_text = String::from_utf8_lossy(bytes.get(line_start..line_end).unwrap_or(&[]));
        let bad = bytes.get(valid).copied().unwrap_or(0);
        SpecError {
            origin: origin.to_owned(),
            line: prefix.matches('\n').count() + 1,
            col: prefix[line_start..].chars().count() + 1,
            message: format!(
                "the file is not valid UTF-8: byte 0x{bad:02x} at offset {valid} cannot start or \
                 continue a character"
            ),
            hint: Some("save runway.toml as UTF-8 (TOML files must be UTF-8)".into()),
            source_line: Some(line_text.trim_end_matches('\r').to_owned()),
            width: 1,
        }
    }

    /// The file at `path` could not be read.
    pub(crate) fn read(path: &Path, err: &std::io::Error) -> Self {
        let shown = path.display().to_string();
        let message = format!("cannot read {shown}: {err}");
        let hint = match err.kind() {
            std::io::ErrorKind::NotFound => {
                Some("run `runway init` to create a runway.toml, or pass the right path".into())
            }
            _ => None,
        };
        Self::unlocated(&shown, message, hint)
    }
}

/// The largest char boundary of `text` that is `<= at` (and within the text).
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Longest source line a snippet shows whole; a longer one is cut to a window around the
/// error's column (a megabytes-long line would otherwise flood the terminal).
const MAX_SNIPPET_CHARS: usize = 160;
/// Longest message shown whole (a message may quote a value from the file).
const MAX_MESSAGE_CHARS: usize = 300;

/// `text` cut to `max` characters, saying how long it was.
fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let total = text.chars().count();
    if total <= max {
        return text.into();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… (cut: {total} characters in all)").into()
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            origin, line, col, ..
        } = self;
        let message = cut(&self.message, MAX_MESSAGE_CHARS);
        let Some(source) = self.source_line.as_deref().filter(|_| *line > 0) else {
            write!(f, "{origin}: error: {message}")?;
            return self.write_hint(f, " ");
        };

        // The window of the line that is shown: all of it, or the part around the column.
        let chars: Vec<char> = source.chars().collect();
        let at = col.saturating_sub(1).min(chars.len());
        let (from, to) = if chars.len() <= MAX_SNIPPET_CHARS {
            (0, chars.len())
        } else {
            let from = at.saturating_sub(MAX_SNIPPET_CHARS / 3);
            (from, (from + MAX_SNIPPET_CHARS).min(chars.len()))
        };
        let shown = |range: &[char]| -> String {
            range
                .iter()
                .map(|&c| {
                    if c == '\t' {
                        " ".repeat(TAB_WIDTH)
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        };
        let before = if from > 0 { "…" } else { "" };
        let after = if to < chars.len() { "…" } else { "" };
        let indent: usize = before.chars().count()
            + chars
                .get(from..at)
                .unwrap_or(&[])
                .iter()
                .map(|&c| if c == '\t' { TAB_WIDTH } else { 1 })
                .sum::<usize>();
        let width = self.width.max(1).min(to.saturating_sub(at).max(1));

        let gutter = " ".repeat(line.to_string().len());
        writeln!(f, "{origin}:{line}:{col}: error: {message}")?;
        writeln!(f, "{gutter} |")?;
        writeln!(
            f,
            "{line} | {before}{}{after}",
            shown(chars.get(from..to).unwrap_or(&[]))
        )?;
        write!(f, "{gutter} | {}{}", " ".repeat(indent), "^".repeat(width))?;
        self.write_hint(f, &gutter)
    }
}

impl SpecError {
    /// Writes `\n<gutter> = hint: …`, aligning any further lines of the hint.
    fn write_hint(&self, f: &mut fmt::Formatter<'_>, gutter: &str) -> fmt::Result {
        let Some(hint) = &self.hint else {
            return Ok(());
        };
        let mut lines = hint.lines();
        write!(f, "\n{gutter} = hint: {}", lines.next().unwrap_or(""))?;
        for line in lines {
            write!(f, "\n{gutter}         {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// Every problem found in one `runway.toml` (at least one), in the order a reader meets
/// them: what `runway validate` prints in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(Vec<SpecError>);

impl SpecErrors {
    /// `problems` must not be empty.
    pub(crate) fn new(problems: Vec<SpecError>) -> Self {
        debug_assert!(!problems.is_empty());
        SpecErrors(problems)
    }

    /// The first problem (the one a reader meets first).
    pub fn first(&self) -> &SpecError {
        &self.0[0]
    }

    /// Every problem, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, SpecError> {
        self.0.iter()
    }

    /// How many problems there are (at least one).
    #[allow(clippy::len_without_is_empty)] // never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<SpecError> for SpecErrors {
    fn from(problem: SpecError) -> Self {
        SpecErrors(vec![problem])
    }
}

impl<'a> IntoIterator for &'a SpecErrors {
    type Item = &'a SpecError;
    type IntoIter = std::slice::Iter<'a, SpecError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Each problem as [`SpecError`] shows it, a blank line between two, and a count at the
/// end when there are several (`3 problems in runway.toml`).
impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{problem}")?;
        }
        if self.0.len() > 1 {
            write!(
                f,
                "\n\n{} problems in {}",
                self.0.len(),
                self.first().origin
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let text = "[run]\nreplicas = 0\n";
        let err = SpecError::at(
            "runway.toml",
            text,
            17..18,
            "replicas must be at least 1",
            Some("set replicas = 1 or more".into()),
        );
        assert_eq!((err.line, err.col, err.width), (2, 12, 1));
        assert_eq!(
            err.to_string(),
            "runway.toml:2:12: error: replicas must be at least 1\n  |\n2 | replicas = 0\n  |            ^\n  = hint: set replicas = 1 or more"
        );
    }

    #[test]
    fn underlines_the_span_up_to_the_end_of_its_first_line() {
        let text = "a = [\n  1,\n]";
        let err = SpecError::at("f", text, 4..text.len(), "m", None);
        assert_eq!((err.line, err.col, err.width), (1, 5, 1));
        let err = SpecError::at("f", "name = \"Web\"", 7..12, "m", None);
        assert_eq!(
            err.to_string(),
            "f:1:8: error: m\n  |\n1 | name = \"Web\"\n  |        ^^^^^"
        );
    }

    #[test]
    fn counts_columns_in_characters_and_survives_odd_offsets() {
        let text = "x = \"é\" # ünïcode\r\ny = 1";
        let err = SpecError::at("f", text, 6..7, "m", None); // inside "é"
        assert_eq!((err.line, err.col), (1, 6));
        assert_eq!(err.source_line.as_deref(), Some("x = \"é\" # ünïcode"));
        let err = SpecError::at("f", text, 500..600, "m", None);
        assert_eq!((err.line, err.col), (2, 6));
        let err = SpecError::at("f", "", 0..0, "m", None);
        assert_eq!((err.line, err.col), (1, 1));
    }

    #[test]
    fn wide_line_numbers_widen_the_gutter() {
        let text = "\n".repeat(11) + "k = 1";
        let err = SpecError::at("f", &text, 11..12, "m", Some("h".into()));
        assert_eq!(
            err.to_string(),
            "f:12:1: error: m\n   |\n12 | k = 1\n   | ^\n   = hint: h"
        );
    }

    #[test]
    fn unlocated_errors_have_no_snippet() {
        let err = SpecError::unlocated("runway.toml", "cannot read runway.toml: gone", None);
        assert_eq!(
            err.to_string(),
            "runway.toml: error: cannot read runway.toml: gone"
        );
    }
}
