//! What an inspection finds: errors (Wallet refuses the pass), warnings (the pass works but falls flat
//! or is risky), and notes (facts worth showing).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The file in the bundle at fault, if one is.
    pub file: Option<String>,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Facts worth showing (identifiers, signer), printed after the findings.
    pub notes: Vec<String>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// One line per finding: `error: pass.json: …`.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .findings
            .iter()
            .map(|f| {
                let level = if f.severity == Severity::Error { "error" } else { "warning" };
                match &f.file {
                    Some(file) => format!("{level}: {file}: {}", f.message),
                    None => format!("{level}: {}", f.message),
                }
            })
            .collect();
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

/// Findings kept per severity. A hostile file can repeat one mistake a hundred thousand times; the
/// first few hundred say all there is to say, and the rest would only flood the terminal.
const MAX_KEPT: usize = 200;

/// Gathers the findings of one inspection, keeping at most `MAX_KEPT` of each severity. Errors and
/// warnings are capped apart, so a flood of warnings can never hide an error (and the exit code).
#[derive(Default)]
pub struct Collector {
    report: Report,
    errors: Tally,
    warnings: Tally,
}

#[derive(Default)]
struct Tally {
    kept: usize,
    dropped: usize,
}

impl Collector {
    pub fn error(&mut self, file: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Error, file, message.into());
    }

    pub fn warn(&mut self, file: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Warning, file, message.into());
    }

    pub fn note(&mut self, note: impl Into<String>) {
        if self.report.notes.len() < MAX_KEPT {
            self.report.notes.push(note.into());
        }
    }

    fn tally(&mut self, severity: Severity) -> &mut Tally {
        match severity {
            Severity::Error => &mut self.errors,
            Severity::Warning => &mut self.warnings,
        }
    }

    fn push(&mut self, severity: Severity, file: Option<&str>, message: String) {
        let tally = self.tally(severity);
        if tally.kept >= MAX_KEPT {
            tally.dropped = tally.dropped.saturating_add(1);
            return;
        }
        tally.kept += 1;
        self.report.findings.push(Finding { severity, file: file.map(str::to_string), message });
    }

    /// The report, closed with one line per severity that had findings left out.
    pub fn finish(mut self) -> Report {
        for (severity, word) in [(Severity::Error, "errors"), (Severity::Warning, "warnings")] {
            let dropped = self.tally(severity).dropped;
            if dropped > 0 {
                self.report.findings.push(Finding {
                    severity,
                    file: None,
                    message: format!("{dropped} more {word} not shown (the first {MAX_KEPT} are above)"),
                });
            }
        }
        self.report
    }

    #[cfg(test)]
    pub fn findings(&self) -> &[Finding] {
        &self.report.findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_warnings_never_hides_an_error() {
        let mut out = Collector::default();
        for i in 0..1000 {
            out.warn(Some("pass.json"), format!("warning {i}"));
        }
        out.error(Some("signature"), "is not a DER PKCS#7 signature");
        let report = out.finish();
        assert!(report.has_errors());
        assert_eq!(report.findings.iter().filter(|f| f.severity == Severity::Warning).count(), MAX_KEPT + 1);
        assert!(report.lines().iter().any(|l| l == "warning: 800 more warnings not shown (the first 200 are above)"));
        assert!(report.lines().iter().any(|l| l == "error: signature: is not a DER PKCS#7 signature"));
    }
}
