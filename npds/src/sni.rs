//! Cilium's SNI patterns (`server_names`), as `SniPattern` in cilium-envoy:
//! case-insensitive; `*` matches `[-a-z0-9_]*` within one label; `**`
//! matches one or more whole labels; a lone `*` matches any name.

use regex::Regex;

/// Why a server name pattern is refused.
#[derive(Debug, thiserror::Error)]
pub enum SniPatternError {
    #[error("empty server name pattern")]
    Empty,
    #[error("server name pattern {0:?} has a trailing dot")]
    TrailingDot(String),
    #[error("server name pattern {0:?} has an empty label")]
    EmptyLabel(String),
    #[error("server name pattern {0:?} has invalid character {1:?}")]
    Character(String, char),
    #[error("server name pattern {0:?}: {1}")]
    Regex(String, regex::Error),
}

#[derive(Debug, Clone)]
pub struct SniPattern {
    source: String,
    regex: Regex,
}

impl SniPattern {
    /// Compiles a pattern; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self, SniPatternError> {
        if pattern.is_empty() {
            return Err(SniPatternError::Empty);
        }
        if pattern.ends_with('.') {
            return Err(SniPatternError::TrailingDot(pattern.into()));
        }
        let lower = pattern.to_ascii_lowercase();
        if lower == "*" {
            return Self::build(pattern, "^.*$");
        }
        let mut re = String::from("^");
        for (i, label) in lower.split('.').enumerate() {
            if label.is_empty() {
                return Err(SniPatternError::EmptyLabel(pattern.into()));
            }
            let last = i == lower.split('.').count() - 1;
            if label.chars().all(|c| c == '*') && label.len() >= 2 {
                // One or more whole labels (the agent collapses *** to **).
                re.push_str(if last {
                    r"[-a-z0-9_]+(?:\.[-a-z0-9_]+)*"
                } else {
                    r"(?:[-a-z0-9_]+\.)+"
                });
                continue;
            }
            for c in label.chars() {
                match c {
                    '*' => re.push_str("[-a-z0-9_]*"),
                    'a'..='z' | '0'..='9' | '-' | '_' => re.push(c),
                    _ => return Err(SniPatternError::Character(pattern.into(), c)),
                }
            }
            if !last {
                re.push_str(r"\.");
            }
        }
        re.push('$');
        Self::build(pattern, &re)
    }

    fn build(source: &str, re: &str) -> Result<Self, SniPatternError> {
        let regex = Regex::new(re).map_err(|e| SniPatternError::Regex(source.into(), e))?;
        Ok(SniPattern {
            source: source.to_string(),
            regex,
        })
    }

    pub fn matches(&self, sni: &str) -> bool {
        // SNI is ASCII by RFC 6066; lowercase without allocating when possible.
        if sni.bytes().any(|b| b.is_ascii_uppercase()) {
            self.regex.is_match(&sni.to_ascii_lowercase())
        } else {
            self.regex.is_match(sni)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::SniPattern;

    #[test]
    fn patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.cilium.io", "www.cilium.io", true),
            ("*.cilium.io", "cilium.io", false),
            ("*.cilium.io", "a.b.cilium.io", false),
            ("**.cilium.io", "a.b.cilium.io", true),
            ("**.cilium.io", "cilium.io", false),
            ("cilium.io", "CILIUM.io", true),
            ("*", "anything.at.all", true),
            ("api*.example.com", "api-v2.example.com", true),
            ("api*.example.com", "web.example.com", false),
        ];
        for (pat, name, want) in cases {
            let p = SniPattern::new(pat).unwrap();
            assert_eq!(p.matches(name), *want, "{pat} vs {name}");
        }
        assert!(SniPattern::new("cilium.io.").is_err());
        assert!(SniPattern::new("a..b").is_err());
        assert!(SniPattern::new("a/b").is_err());
    }
}
