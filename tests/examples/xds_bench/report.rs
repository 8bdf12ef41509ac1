//! The table the benchmark prints: rows with values, targets (PASS or MISS)
//! and checks (PASS or FAIL; a failed check fails the run).

use std::fmt::Write as _;

use crate::log;

#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Info,
    Pass,
    Miss,
    Fail,
}

struct Row {
    name: String,
    value: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
pub struct Report {
    sections: Vec<(String, Vec<Row>)>,
    notes: Vec<String>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn section(&mut self, title: impl Into<String>) {
        self.sections.push((title.into(), Vec::new()));
    }

    pub fn row(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.push(name, value, "", Verdict::Info);
    }

    /// A row with a target; `ok` decides PASS or MISS.
    pub fn target(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        target: &str,
        ok: bool,
    ) {
        let v = if ok { Verdict::Pass } else { Verdict::Miss };
        self.push(name, value, target, v);
    }

    /// A row for a correctness check; a failed check makes the run fail.
    pub fn check(&mut self, name: impl Into<String>, value: impl Into<String>, ok: bool) {
        let name = name.into();
        let value = value.into();
        if !ok {
            self.failures.push(format!("{name}: {value}"));
        }
        let v = if ok { Verdict::Pass } else { Verdict::Fail };
        self.push(name, value, "all", v);
    }

    fn push(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        target: &str,
        verdict: Verdict,
    ) {
        if self.sections.is_empty() {
            self.section("");
        }
        self.sections.last_mut().unwrap().1.push(Row {
            name: name.into(),
            value: value.into(),
            target: target.into(),
            verdict,
        });
    }

    pub fn fail(&mut self, what: impl Into<String>) {
        let what = what.into();
        log(format!("FAILED: {what}"));
        self.failures.push(what);
    }

    pub fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<64} {:>18} {:>14}  verdict",
            "measurement", "value", "target"
        );
        for (title, rows) in &self.sections {
            let _ = writeln!(out, "{title}");
            for r in rows {
                let verdict = match r.verdict {
                    Verdict::Info => "",
                    Verdict::Pass => "PASS",
                    Verdict::Miss => "MISS",
                    Verdict::Fail => "FAIL",
                };
                let _ = writeln!(
                    out,
                    "  {:<62} {:>18} {:>14}  {}",
                    r.name, r.value, r.target, verdict
                );
            }
        }
        let pass = self.count(Verdict::Pass);
        let miss = self.count(Verdict::Miss);
        let fail = self.count(Verdict::Fail);
        let _ = writeln!(
            out,
            "\ntargets and checks: {pass} PASS, {miss} MISS, {fail} FAIL"
        );
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for f in &self.failures {
            let _ = writeln!(out, "FAILED: {f}");
        }
        out
    }

    fn count(&self, v: Verdict) -> usize {
        self.sections
            .iter()
            .flat_map(|(_, r)| r)
            .filter(|r| r.verdict == v)
            .count()
    }
}
