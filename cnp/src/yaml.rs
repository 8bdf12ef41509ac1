//! A small walker over `serde_yaml_ng::Value` that keeps the field path, so
//! every error can say exactly where it is. Every mapping is read against the
//! full list of keys it may hold: an unknown key is an error, and a known key
//! this translator does not implement yet is an "unsupported" error. A key
//! whose value is YAML `null` counts as absent, as in Kubernetes.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use crate::error::{index, join, Fault, Problem};

/// A YAML value and the field path that leads to it.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub value: &'a Value,
    pub path: &'a str,
}

/// The keys of one mapping, checked against what the schema allows.
pub(crate) struct Fields<'a> {
    map: &'a Mapping,
    path: String,
    /// Owned paths for the nodes handed out, so `Node` can borrow them.
    paths: BTreeMap<&'a str, String>,
}

impl<'a> Node<'a> {
    pub fn new(value: &'a Value, path: &'a str) -> Self {
        Node { value, path }
    }

    fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
            Value::Tagged(_) => "a tagged value",
        }
    }

    fn expected(&self, what: &str) -> Fault {
        Fault::invalid(self.path, format!("expected {what}, found {}", self.kind()))
    }

    /// Reads a mapping whose keys must all be in `known` or `unsupported`;
    /// a present `unsupported` key (with a non-null value) is an error.
    pub fn fields(&self, known: &[&str], unsupported: &[&str]) -> Result<Fields<'a>, Fault> {
        let Value::Mapping(map) = self.value else {
            return Err(self.expected("a mapping"));
        };
        let mut paths = BTreeMap::new();
        for (k, v) in map {
            let Value::String(key) = k else {
                return Err(Fault::invalid(self.path, "mapping keys must be strings"));
            };
            let path = join(self.path, key);
            if unsupported.contains(&key.as_str()) {
                if !v.is_null() {
                    return Err(Fault::unsupported(path));
                }
            } else if !known.contains(&key.as_str()) {
                return Err(Fault::new(path, Problem::UnknownField));
            }
            paths.insert(key.as_str(), path);
        }
        Ok(Fields {
            map,
            path: self.path.to_string(),
            paths,
        })
    }

    pub fn str(&self) -> Result<&'a str, Fault> {
        match self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    /// A string, or a number written without quotes (YAML `port: 80`).
    pub fn scalar_string(&self) -> Result<String, Fault> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(self.expected("a string or a number")),
        }
    }

    pub fn bool(&self) -> Result<bool, Fault> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.expected("a boolean")),
        }
    }

    /// A non-negative integer; a quoted one is accepted too.
    pub fn u64(&self) -> Result<u64, Fault> {
        let parsed = match self.value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => return Err(self.expected("a non-negative integer")),
        };
        parsed.ok_or_else(|| {
            Fault::invalid(
                self.path,
                format!(
                    "expected a non-negative integer, found {}",
                    show(self.value)
                ),
            )
        })
    }

    /// The items of a list with their paths (`path[i]`).
    pub fn list(&self) -> Result<Vec<(String, &'a Value)>, Fault> {
        match self.value {
            Value::Sequence(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| (index(self.path, i), v))
                .collect()),
            _ => Err(self.expected("a list")),
        }
    }

    /// A list of strings.
    pub fn strings(&self) -> Result<Vec<String>, Fault> {
        self.list()?
            .into_iter()
            .map(|(p, v)| Node::new(v, &p).str().map(str::to_string))
            .collect()
    }

    /// A mapping of string to string (label maps); numbers and booleans
    /// written without quotes are taken as their text.
    pub fn string_map(&self) -> Result<BTreeMap<String, String>, Fault> {
        let Value::Mapping(map) = self.value else {
            return Err(self.expected("a mapping"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let Value::String(key) = k else {
                return Err(Fault::invalid(self.path, "mapping keys must be strings"));
            };
            let path = join(self.path, key);
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => return Err(Node::new(v, &path).expected("a string")),
            };
            out.insert(key.clone(), value);
        }
        Ok(out)
    }
}

impl<'a> Fields<'a> {
    /// The value at `key`, unless absent or null.
    pub fn get(&self, key: &str) -> Option<Node<'_>> {
        let v = self.map.get(key)?;
        if v.is_null() {
            return None;
        }
        let path = self.paths.get(key)?;
        Some(Node::new(v, path))
    }

    /// The value at `key`, which must be present.
    pub fn require(&self, key: &str) -> Result<Node<'_>, Fault> {
        self.get(key)
            .ok_or_else(|| Fault::new(join(&self.path, key), Problem::Missing))
    }

    /// The path a key has or would have.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A short rendering of a scalar for messages.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => "a structure".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn unknown_and_unsupported_keys_name_their_path() {
        let v = yaml("{a: 1, b: 2}");
        let n = Node::new(&v, "spec");
        let err = n.fields(&["a"], &[]).err().unwrap();
        assert_eq!(err, Fault::new("spec.b", Problem::UnknownField));
        let err = n.fields(&["a"], &["b"]).err().unwrap();
        assert_eq!(err, Fault::unsupported("spec.b"));
        let v = yaml("{a: 1, b: null}");
        assert!(Node::new(&v, "spec").fields(&["a"], &["b"]).is_ok());
    }

    #[test]
    fn scalars_and_lists() {
        let v = yaml("{p: 80, q: \"81\", l: [x, y], m: {k: 1}}");
        let n = Node::new(&v, "");
        let f = n.fields(&["p", "q", "l", "m"], &[]).unwrap();
        assert_eq!(f.get("p").unwrap().u64().unwrap(), 80);
        assert_eq!(f.get("q").unwrap().scalar_string().unwrap(), "81");
        assert_eq!(f.get("l").unwrap().strings().unwrap(), vec!["x", "y"]);
        assert_eq!(f.get("m").unwrap().string_map().unwrap()["k"], "1");
        let err = f.get("l").unwrap().str().err().unwrap();
        assert_eq!(err, Fault::invalid("l", "expected a string, found a list"));
        assert_eq!(
            f.require("z").err().unwrap(),
            Fault::new("z", Problem::Missing)
        );
    }
}
