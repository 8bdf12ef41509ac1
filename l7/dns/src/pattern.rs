//! Cilium's DNS rules: `matchName` and `matchPattern` (`pkg/fqdn/matchpattern`).
//!
//! - `matchName`: the lowercased name with a trailing dot, matched exactly.
//! - `matchPattern`: a trailing dot is added (unless the pattern is all
//!   `*`), it is lowercased; `*` matches `[-a-zA-Z0-9_]*` within one label
//!   (runs of `*` collapse); a leading `**.` matches one or more labels; an
//!   all-`*` pattern (with or without a trailing dot) matches every name,
//!   the root included.
//! - A rule set is one regex `^(?:a|b|...)$`; an empty rule set, or any
//!   all-`*` pattern in it, allows everything.
//! - Patterns may use only `[-a-zA-Z0-9_.*]` and be at most 255 long.

use regex::Regex;

/// One DNS rule entry as policy writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsSelector {
    MatchName(String),
    MatchPattern(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("{0:?} is empty")]
    Empty(String),
    #[error("{0:?} is longer than 255 characters")]
    TooLong(String),
    #[error(
        "{0:?} has characters outside [-a-zA-Z0-9_.*] (matchPattern) or [-a-zA-Z0-9_.] (matchName)"
    )]
    Characters(String),
}

/// The characters one label may hold (`allowedDNSCharsREGroup`).
const LABEL_CHARS: &str = "[-a-zA-Z0-9_]";

fn check(s: &str, star_ok: bool) -> Result<(), PatternError> {
    if s.is_empty() {
        return Err(PatternError::Empty(s.into()));
    }
    if s.len() > 255 {
        return Err(PatternError::TooLong(s.into()));
    }
    let ok = s.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') || (star_ok && b == b'*')
    });
    if ok {
        Ok(())
    } else {
        Err(PatternError::Characters(s.into()))
    }
}

fn fqdn(s: &str) -> String {
    let mut s = s.trim().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Whether a pattern is all `*` (with an optional trailing dot).
fn matches_everything(p: &str) -> bool {
    let p = p.trim();
    let p = p.strip_suffix('.').unwrap_or(p);
    !p.is_empty() && p.bytes().all(|b| b == b'*')
}

/// The regex (unanchored) one selector stands for; `None` for "everything".
pub fn selector_regex(sel: &DnsSelector) -> Result<Option<String>, PatternError> {
    match sel {
        DnsSelector::MatchName(n) => {
            check(n.trim(), false)?;
            Ok(Some(regex::escape(&fqdn(n))))
        }
        DnsSelector::MatchPattern(p) => {
            check(p.trim(), true)?;
            if matches_everything(p) {
                return Ok(None);
            }
            let p = fqdn(p);
            let (prefix, rest) = match p.strip_prefix("**.") {
                Some(rest) => (format!("(?:{LABEL_CHARS}+\\.)+"), rest),
                None => (String::new(), p.as_str()),
            };
            let mut re = prefix;
            let mut after_star = false;
            for c in rest.chars() {
                if c == '*' {
                    // Runs of `*` collapse into one.
                    if !after_star {
                        re.push_str(LABEL_CHARS);
                        re.push('*');
                    }
                    after_star = true;
                } else {
                    re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
                    after_star = false;
                }
            }
            Ok(Some(re))
        }
    }
}

/// A compiled rule set: the DNS rules of one (endpoint, port, server) entry.
#[derive(Debug, Clone)]
pub struct DnsRules {
    /// `None`: every name is allowed.
    re: Option<Regex>,
}

impl DnsRules {
    pub fn compile(selectors: &[DnsSelector]) -> Result<DnsRules, PatternError> {
        let mut alts = Vec::with_capacity(selectors.len());
        let mut everything = selectors.is_empty();
        for s in selectors {
            match selector_regex(s)? {
                None => everything = true,
                Some(re) => alts.push(re),
            }
        }
        if everything {
            return Ok(DnsRules { re: None });
        }
        alts.sort();
        alts.dedup();
        let re = Regex::new(&format!("^(?:{})$", alts.join("|")))
            .expect("patterns are escaped or built from a fixed character class");
        Ok(DnsRules { re: Some(re) })
    }

    /// Whether `name` (any case, with or without the trailing dot) is allowed.
    pub fn allows(&self, name: &str) -> bool {
        match &self.re {
            None => true,
            Some(re) => re.is_match(&fqdn(name)),
        }
    }

    pub fn allows_everything(&self) -> bool {
        self.re.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sel: &[DnsSelector]) -> DnsRules {
        DnsRules::compile(sel).unwrap()
    }
    fn name(s: &str) -> DnsSelector {
        DnsSelector::MatchName(s.into())
    }
    fn pat(s: &str) -> DnsSelector {
        DnsSelector::MatchPattern(s.into())
    }

    #[test]
    fn cilium_dns_demo() {
        let r = rules(&[name("api.github.com")]);
        assert!(r.allows("api.github.com"));
        assert!(r.allows("API.GitHub.com."));
        assert!(!r.allows("support.github.com"));
        assert!(!r.allows("apixgithub.com"), "dots are literal");
        let r = rules(&[pat("*.github.com")]);
        assert!(r.allows("api.github.com."));
        assert!(r.allows("support.github.com"));
        assert!(!r.allows("github.com"));
        assert!(!r.allows("a.b.github.com"), "* stays within one label");
    }

    #[test]
    fn pattern_forms() {
        let r = rules(&[pat("**.example.com")]);
        assert!(r.allows("a.example.com") && r.allows("a.b.c.example.com"));
        assert!(!r.allows("example.com"));
        let r = rules(&[pat("ap*-*.example.com.")]);
        assert!(r.allows("api-1.example.com") && r.allows("ap-.example.com"));
        assert!(!r.allows("xapi-1.example.com"));
        let r = rules(&[pat("sub.***.com")]);
        assert!(r.allows("sub.x.com"), "runs of * collapse");
        for all in ["*", "**", "*.", "***."] {
            let r = rules(&[name("x.com"), pat(all)]);
            assert!(
                r.allows_everything() && r.allows(".") && r.allows("anything.at.all"),
                "{all}"
            );
        }
        assert!(
            rules(&[]).allows("any.name"),
            "an empty rule allows everything"
        );
        let r = rules(&[name("a.com"), pat("*.b.com"), name("a.com")]);
        assert!(r.allows("a.com") && r.allows("x.b.com") && !r.allows("b.com"));
    }

    #[test]
    fn invalid_patterns() {
        assert!(matches!(
            DnsRules::compile(&[pat("a/b.com")]),
            Err(PatternError::Characters(_))
        ));
        assert!(matches!(
            DnsRules::compile(&[name("*.com")]),
            Err(PatternError::Characters(_))
        ));
        assert!(matches!(
            DnsRules::compile(&[name("")]),
            Err(PatternError::Empty(_))
        ));
        let long = "a".repeat(256);
        assert!(matches!(
            DnsRules::compile(&[name(&long)]),
            Err(PatternError::TooLong(_))
        ));
        // `**` other than a leading `**.` is a run of `*`: one label.
        let r = rules(&[pat("a.**.com")]);
        assert!(r.allows("a.b.com") && !r.allows("a.b.c.com"));
        // Regex metacharacters are never live.
        assert!(matches!(
            DnsRules::compile(&[pat("a+.com")]),
            Err(PatternError::Characters(_))
        ));
    }
}
