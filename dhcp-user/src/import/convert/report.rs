//! The import report: what happened to every construct of the input.

use std::fmt;

use crate::import::syntax::Pos;

/// What happened to one construct of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Imported with the same meaning.
    Mapped,
    /// Imported in the closest Kea form; the note says what differs.
    Approximated,
    /// Not imported: Kea/xdhcpd has no equivalent (or the value is invalid).
    Refused,
    /// Nothing to import (it configures something xdhcpd does its own way).
    Noted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Mapped => "mapped",
            Outcome::Approximated => "approximated",
            Outcome::Refused => "refused",
            Outcome::Noted => "noted",
        })
    }
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    /// What happened.
    pub outcome: Outcome,
    /// Where the construct is, when it comes from the input.
    pub at: Option<Pos>,
    /// The construct, as written (secrets are never included).
    pub construct: String,
    /// What it became, or why not.
    pub note: String,
}

/// Everything mapped, approximated, refused or noted, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The entries.
    pub entries: Vec<ReportEntry>,
}

impl Report {
    pub(super) fn add(
        &mut self,
        outcome: Outcome,
        at: Option<&Pos>,
        construct: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.entries.push(ReportEntry {
            outcome,
            at: at.cloned(),
            construct: construct.into(),
            note: note.into(),
        });
    }

    /// Entries with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }

    /// The report as text, one construct per line, then totals.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            let at = e.at.as_ref().map_or_else(|| "-".to_owned(), Pos::to_string);
            s.push_str(&format!(
                "{:<12} {at}: {}: {}\n",
                e.outcome.to_string(),
                e.construct,
                e.note
            ));
        }
        s.push_str(&format!(
            "{} mapped, {} approximated, {} refused, {} noted\n",
            self.count(Outcome::Mapped),
            self.count(Outcome::Approximated),
            self.count(Outcome::Refused),
            self.count(Outcome::Noted)
        ));
        s
    }
}
