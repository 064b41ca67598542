//! Diagnostics: one problem in one file, with its place and what to do about it.
//!
//! Every message a user reads about a bad file goes through here, so all of them look alike:
//! `path:line:column: error: message`, the source line with a caret, and a `help:` line.

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file (e.g. it is not text).
    pub line: u64,
    pub column: u64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn error(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            source_line: None,
        }
    }

    pub fn warning(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(file, message) }
    }

    /// Places the diagnostic and keeps the source line for the caret display.
    pub fn at(mut self, text: &str, line: u64, column: u64) -> Self {
        self.line = line;
        self.column = column;
        if line > 0 {
            self.source_line = text.lines().nth((line - 1) as usize).map(|l| l.to_string());
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line > 0 {
            writeln!(f, "{}:{}:{}: {sev}: {}", self.file, self.line, self.column, self.message)?;
        } else {
            writeln!(f, "{}: {sev}: {}", self.file, self.message)?;
        }
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string();
            let shown: String = src.chars().take(160).collect();
            writeln!(f, "{} |", " ".repeat(gutter.len()))?;
            writeln!(f, "{gutter} | {shown}")?;
            let caret_col = (self.column.max(1) - 1) as usize;
            let pad: String = shown.chars().take(caret_col).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            writeln!(f, "{} | {pad}^", " ".repeat(gutter.len()))?;
        }
        if let Some(h) = &self.help {
            writeln!(f, "  = help: {h}")?;
        }
        Ok(())
    }
}
