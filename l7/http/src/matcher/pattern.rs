//! Policy regexes: checked completely when policy arrives, compiled on first
//! use.
//!
//! A node's policy can carry hundreds of thousands of distinct path regexes
//! (one set per endpoint), most of which a given proxy never sees a request
//! for. Building each one eagerly cost ~20 µs and ~7 KB (the `regex` crate's
//! NFAs, engines and cache pool), which made a full resync take seconds and
//! most of a gigabyte. So an update only parses the pattern and translates it
//! (`regex-syntax`, the `regex` crate's own front end): every syntax error,
//! RE2 incompatibility and oversized program is still refused at once, naming
//! the rule. The matcher is built by the first request that needs it and kept
//! for the life of the snapshot (and of any later snapshot with the same
//! pattern, through interning).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, Weak};

use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::{self, Class, Hir, HirKind};

use super::{MatcherError, REGEX_MAX_PROGRAM_SIZE, REGEX_SIZE_LIMIT};

/// Bound on each regex's lazy DFA cache, per thread that uses it.
const DFA_CACHE_LIMIT: usize = 1 << 20;

/// The `regex` crate's default nesting limit. The pattern is checked one
/// level shallower, because the anchoring group adds one.
const NEST_LIMIT: u32 = 250;

/// A validated policy regex with RE2 full-match semantics.
#[derive(Debug)]
pub(crate) struct PolicyRegex {
    /// `^(?:pattern)$`, also the intern key.
    anchored: Arc<str>,
    /// Whether the pattern needs Unicode mode (`\p{..}`); ASCII otherwise.
    unicode: bool,
    /// `None` once building failed: the matcher then fails closed.
    compiled: OnceLock<Option<Regex>>,
}

impl PolicyRegex {
    /// Full match against `hay`; `None` when the regex could not be built
    /// (never expected after validation, logged, and treated as no match by
    /// callers whatever the matcher's inversion).
    pub(crate) fn is_match(&self, hay: &[u8]) -> Option<bool> {
        self.regex().map(|re| re.is_match(hay))
    }

    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match build(&self.anchored, self.unicode) {
                Ok(re) => Some(re),
                Err(e) => {
                    tracing::error!(
                        pattern = %self.anchored,
                        error = %e,
                        "policy regex failed to build; its matcher fails closed"
                    );
                    None
                }
            })
            .as_ref()
    }
}

/// Validates `pattern` and returns its shared matcher.
///
/// The bare pattern must be well formed on its own, so that an unbalanced
/// `)` cannot escape the anchoring group (`a)|(.*` would otherwise become an
/// unanchored alternation), and must not use the `x` flag, which RE2 lacks
/// and which would let a comment swallow the anchoring. Patterns are built in
/// ASCII mode so `\d`, `\w`, `\s` and `\b` are ASCII-only like RE2's; a
/// pattern that needs Unicode (`\p{..}`) falls back to Unicode mode.
/// Matching is on raw bytes, so non-UTF-8 header values are matched rather
/// than rejected.
///
/// Identical patterns share one matcher: the agent sends the same rules for
/// every endpoint a policy selects, and an update repeats most of the one
/// before it. Entries are weak, so a pattern no snapshot uses is freed.
pub(crate) fn compile(pattern: &str) -> Result<Arc<PolicyRegex>, MatcherError> {
    static INTERNED: LazyLock<Mutex<HashMap<Arc<str>, Weak<PolicyRegex>>>> =
        LazyLock::new(Default::default);
    let lock = || INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    let anchored: Arc<str> = format!("^(?:{pattern})$").into();
    if let Some(re) = lock().get(&anchored).and_then(Weak::upgrade) {
        return Ok(re);
    }
    let unicode = validate(pattern)?;
    let re = Arc::new(PolicyRegex {
        anchored: anchored.clone(),
        unicode,
        compiled: OnceLock::new(),
    });
    let mut map = lock();
    // Forget dead entries whenever the map doubles: amortized constant cost,
    // and the map stays within twice the live patterns.
    if map.len() >= 1024 && map.len().is_power_of_two() {
        map.retain(|_, w| w.strong_count() > 0);
    }
    // A concurrent compile of the same pattern may have won; either result
    // is equivalent, and the one in the map is shared from now on.
    match map.get(&anchored).and_then(Weak::upgrade) {
        Some(winner) => Ok(winner),
        None => {
            map.insert(anchored, Arc::downgrade(&re));
            Ok(re)
        }
    }
}

/// Everything that could make the build fail, decided without building:
/// syntax, flags, translation and program size. Returns whether Unicode mode
/// is needed.
fn validate(pattern: &str) -> Result<bool, MatcherError> {
    let tree = ast::parse::ParserBuilder::new()
        .nest_limit(NEST_LIMIT - 1)
        .build()
        .parse(pattern)
        .map_err(|e| MatcherError::InvalidRegex(e.kind().to_string()))?;
    if uses_extended_mode(&tree) {
        return Err(MatcherError::ExtendedMode);
    }
    // ASCII first, Unicode only when the pattern needs it.
    let (hir, unicode) = match translate(pattern, &tree, false) {
        Ok(hir) => (hir, false),
        Err(_) => match translate(pattern, &tree, true) {
            Ok(hir) => (hir, true),
            Err(e) => return Err(MatcherError::InvalidRegex(e.kind().to_string())),
        },
    };
    if program_size(&hir).is_none() {
        return Err(MatcherError::RegexTooBig);
    }
    Ok(unicode)
}

/// The translation `regex::bytes` applies to `tree`, parsed from `pattern`.
fn translate(pattern: &str, tree: &Ast, unicode: bool) -> Result<Hir, hir::Error> {
    hir::translate::TranslatorBuilder::new()
        .unicode(unicode)
        .utf8(false)
        .build()
        .translate(pattern, tree)
}

/// The program size as documented at [`REGEX_MAX_PROGRAM_SIZE`], or `None`
/// above it.
fn program_size(hir: &Hir) -> Option<usize> {
    /// One running sum per open node, innermost last, over a sentinel that
    /// collects the root.
    struct Size(Vec<usize>);
    impl hir::Visitor for Size {
        type Output = usize;
        type Err = ();
        fn finish(self) -> Result<usize, ()> {
            Ok(self.0[0])
        }
        fn visit_pre(&mut self, _: &Hir) -> Result<(), ()> {
            self.0.push(0);
            Ok(())
        }
        fn visit_post(&mut self, hir: &Hir) -> Result<(), ()> {
            let children = self.0.pop().ok_or(())?;
            let own = match hir.kind() {
                HirKind::Empty => 0,
                HirKind::Literal(lit) => lit.0.len(),
                HirKind::Class(Class::Bytes(c)) => c.ranges().len(),
                HirKind::Class(Class::Unicode(c)) => c
                    .ranges()
                    .iter()
                    .flat_map(|r| regex_syntax::utf8::Utf8Sequences::new(r.start(), r.end()))
                    .map(|seq| seq.len())
                    .sum(),
                HirKind::Look(_) => 1,
                HirKind::Repetition(rep) => {
                    let copies = match rep.max {
                        Some(max) => max.max(1),
                        None => rep.min.saturating_add(1),
                    };
                    (copies as usize).saturating_mul(children).saturating_add(1)
                }
                HirKind::Capture(_) => children.saturating_add(2),
                HirKind::Concat(_) => children,
                HirKind::Alternation(alts) => children.saturating_add(alts.len()),
            };
            if own > REGEX_MAX_PROGRAM_SIZE {
                return Err(());
            }
            let top = self.0.last_mut().ok_or(())?;
            *top = top.saturating_add(own);
            Ok(())
        }
    }
    // `visit` walks on the heap, so deep nesting cannot overflow the stack.
    hir::visit(hir, Size(vec![0])).ok()
}

/// Whether the pattern mentions the `x` flag anywhere, set or cleared, in a
/// flag directive (`(?x)`) or a flag group (`(?x:...)`). Read from the same
/// AST parser the `regex` crate uses, so escapes and classes such as `\(?x)`
/// or `[(?x)]` are not mistaken for flags.
fn uses_extended_mode(tree: &Ast) -> bool {
    use regex_syntax::ast::{Flag, GroupKind};

    struct FindX;
    impl ast::Visitor for FindX {
        type Output = ();
        type Err = ();
        fn finish(self) -> Result<(), ()> {
            Ok(())
        }
        fn visit_pre(&mut self, node: &Ast) -> Result<(), ()> {
            let flags = match node {
                Ast::Flags(set) => &set.flags,
                Ast::Group(g) => match &g.kind {
                    GroupKind::NonCapturing(flags) => flags,
                    _ => return Ok(()),
                },
                _ => return Ok(()),
            };
            match flags.flag_state(Flag::IgnoreWhitespace) {
                Some(_) => Err(()),
                None => Ok(()),
            }
        }
    }

    ast::visit(tree, FindX).is_err()
}

fn build(anchored: &str, unicode: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(anchored)
        .unicode(unicode)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(DFA_CACHE_LIMIT)
        .build()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A regex that got past validation yet cannot be built (validation
    /// prevents this; the test needs it to check failing closed).
    pub(crate) fn unbuildable() -> Arc<PolicyRegex> {
        Arc::new(PolicyRegex {
            anchored: "^(?:(unclosed)$".into(),
            unicode: false,
            compiled: OnceLock::new(),
        })
    }

    #[test]
    fn an_unbuildable_regex_answers_unknown() {
        assert_eq!(unbuildable().is_match(b"anything"), None);
    }

    /// Whatever validation accepts, the `regex` crate builds, in the mode
    /// validation chose; whatever it refuses (size aside) fails to build in
    /// both modes or escapes the anchoring.
    #[test]
    fn validation_agrees_with_the_builder() {
        let patterns = [
            "/api/v[0-9]+/.*",
            "GET|POST",
            r"\d+\.\w*\s?\b",
            r"\p{L}+",
            r"\p{Greek}",
            r"(?i)straße",
            "caf.+",
            r"(?-u:\xFF)",
            r"\xFF",
            "é",
            "[[:alpha:]]+",
            "(?P<name>a)(?:b)",
            "a{2,5}b*?c+",
            "",
            "^$",
            "(",
            "a)|(.*",
            "[z-a]",
            r"\C",
            "(?<=a)b",
            r"\p{NoSuchClass}",
            "a{5,2}",
            "*a",
            r"\8",
        ];
        for p in patterns {
            let anchored = format!("^(?:{p})$");
            match validate(p) {
                Ok(unicode) => {
                    assert!(
                        build(&anchored, unicode).is_ok(),
                        "{p:?} validated, does not build"
                    );
                    // ASCII whenever ASCII builds, as before.
                    assert_eq!(unicode, build(&anchored, false).is_err(), "{p:?}");
                }
                Err(e) => assert!(
                    build(&anchored, false).is_err() && build(&anchored, true).is_err()
                        || p == "a)|(.*",
                    "{p:?} refused ({e}) but builds"
                ),
            }
        }
    }

    #[test]
    fn program_size_counts_repetitions_and_classes() {
        let size = |p: &str| {
            let tree = ast::parse::Parser::new().parse(p).unwrap();
            program_size(&translate(p, &tree, false).unwrap())
        };
        assert_eq!(size("abc"), Some(3));
        assert_eq!(size("[a-z0-9-]"), Some(3));
        assert_eq!(size("a{10}"), Some(11));
        assert_eq!(size("a|b"), Some(1)); // one class [ab]
        assert_eq!(size("ab|cd"), Some(6));
        assert_eq!(size("a{1000}{1000}"), None);
        assert_eq!(
            size(&"x".repeat(REGEX_MAX_PROGRAM_SIZE)),
            Some(REGEX_MAX_PROGRAM_SIZE)
        );
        assert_eq!(size(&"x".repeat(REGEX_MAX_PROGRAM_SIZE + 1)), None);
    }
}
