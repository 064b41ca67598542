//! Reading klab's YAML safely: size and structure budgets, exact error places, and an index
//! from a field's path (`faults[1].sysctl.settings`) to its place in the file.
//!
//! Nothing here may panic or hang on hostile input: files over [`MAX_FILE_BYTES`] are refused
//! before parsing, and serde-saphyr's budgets stop alias bombs and deep nesting early.

use super::diag::Diagnostic;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Options, Spanned};
use std::collections::HashMap;
use std::fmt;

/// A scenario is a page of text; anything much larger is a mistake (or an attack).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

pub fn options() -> Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 48,
            max_nodes: 50_000,
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_total_scalar_bytes: 4 * 1024 * 1024,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 50_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        with_snippet: false,
    }
}

/// Reads at most one byte more than [`MAX_FILE_BYTES`]: enough for [`as_text`] to refuse a file
/// that is too large, without reading 20 MB first (or forever, from a FIFO or `/dev/zero`).
pub fn read_capped(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks that `bytes` is a text file of reasonable size and returns it as a string.
pub fn as_text<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            file,
            format!("file is larger than {} MiB, the most a klab file may be", MAX_FILE_BYTES / (1024 * 1024)),
        )
        .help("is this really a scenario? split large manifests into several steps"));
    }
    if bytes.contains(&0) {
        return Err(Diagnostic::error(file, "file contains NUL bytes: this is not a YAML text file"));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let mut d = Diagnostic::error(file, "file is not valid UTF-8 text");
        d.line = line;
        d.column = 1;
        d
    })
}

/// Deserializes `text` into `T`, turning a failure into a placed diagnostic.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options::<T>(text, options()).map_err(|e| {
        let mut d = to_diagnostic(file, text, &e);
        // Errors raised by klab's own map readers (unknown step or check kinds) carry the place
        // of the mapping; move them to the offending key, which the location index knows.
        if let Some(field) = d.message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            let locs = Locations::of(text);
            let suffix = format!(".{field}");
            if let Some(&(l, c)) = locs
                .keys
                .iter()
                .filter(|(p, (l, _))| (p.ends_with(&suffix) || p.as_str() == field) && *l >= d.line)
                .map(|(_, lc)| lc)
                .min()
            {
                d = Diagnostic { source_line: None, ..d }.at(text, l, c);
            }
        }
        d
    })
}

pub fn to_diagnostic(file: &str, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let (message, help) = clean_message(&e.without_snippet().to_string());
    let mut d = Diagnostic::error(file, message);
    if let Some(l) = e.location() {
        d = d.at(text, l.line(), l.column());
    }
    if let Some(h) = help {
        d = d.help(h);
    } else if d.source_line.as_deref().is_some_and(|l| l.contains("{{")) {
        d = d.help(
            "quote a templated value, e.g. `namespace: \"{{ namespace }}\"`: unquoted `{{` starts a YAML mapping",
        );
    }
    d
}

/// serde-saphyr's text carries its own "line X column Y:" prefix and wording meant for
/// developers; keep the message, move the place to the diagnostic, and add a hint.
fn clean_message(raw: &str) -> (String, Option<String>) {
    let mut msg = raw.trim().trim_start_matches("error:").trim().to_string();
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(idx) = rest.find(": ")
    {
        let head = &rest[..idx];
        if head.split(" column ").all(|p| p.chars().all(|c| c.is_ascii_digit())) {
            msg = rest[idx + 2..].to_string();
        }
    }
    if let Some(first) = msg.lines().next() {
        msg = first.to_string();
    }
    if let Some(i) = msg.rfind(" at line ")
        && msg[i + 9..].split(", column ").all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        msg.truncate(i);
    }
    let help = if msg.contains("budget breached") || msg.contains("recursion limit") || msg.contains("alias") {
        Some(
            "the file is too deeply nested or expands too many aliases; klab refuses it rather than risk a hang"
                .to_string(),
        )
    } else if msg.contains("duplicate mapping key") {
        msg = msg.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        Some("each key may appear once in a mapping; remove or rename one of them".to_string())
    } else if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
        let expected = msg.split("expected one of ").nth(1).unwrap_or("");
        suggest(field, expected.split(", ").map(|s| s.trim_matches('`'))).map(|s| format!("did you mean `{s}`?"))
    } else {
        None
    };
    (msg, help)
}

/// The closest candidate by edit distance, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        if d <= 2.max(word.len() / 3) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A YAML tree that only remembers where each node stands.
enum Node {
    Leaf,
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element::<Spanned<Node>>()? {
                    v.push(x);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = m.next_key::<Spanned<KeyText>>()? {
                    let val = m.next_value::<Spanned<Node>>()?;
                    v.push((Spanned { value: k.value.0, referenced: k.referenced, defined: k.defined }, val));
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V).map_err(|e: D::Error| de::Error::custom(e))
    }
}

/// A mapping key of any scalar type, as text.
struct KeyText(String);
impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("~".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where each field of a parsed file stands: `path` → (line, column) of its value, and of its key.
#[derive(Default)]
pub struct Locations {
    values: HashMap<String, (u64, u64)>,
    keys: HashMap<String, (u64, u64)>,
}

impl Locations {
    /// Builds the index; a file that fails to parse gives an empty index (its parse error is
    /// reported on its own).
    pub fn of(text: &str) -> Locations {
        let mut locs = Locations::default();
        if let Ok(root) = serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options()) {
            locs.walk(String::new(), &root);
        }
        locs
    }

    fn walk(&mut self, path: String, node: &Spanned<Node>) {
        let l = &node.referenced;
        self.values.insert(path.clone(), (l.line(), l.column()));
        match &node.value {
            Node::Leaf => {}
            Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(format!("{path}[{i}]"), item);
                }
            }
            Node::Map(entries) => {
                for (k, v) in entries {
                    let p = if path.is_empty() { k.value.clone() } else { format!("{path}.{}", k.value) };
                    self.keys.insert(p.clone(), (k.referenced.line(), k.referenced.column()));
                    self.walk(p, v);
                }
            }
        }
    }

    /// The value's place, else the nearest enclosing node that has one.
    pub fn find(&self, path: &str) -> (u64, u64) {
        let mut p = path.to_string();
        loop {
            if let Some(&(l, c)) = self.values.get(&p)
                && l > 0
            {
                return (l, c);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return self.values.get("").copied().unwrap_or((1, 1)),
            }
        }
    }

    /// The key's place (for "unknown …" style problems), else the value's.
    pub fn find_key(&self, path: &str) -> (u64, u64) {
        match self.keys.get(path) {
            Some(&(l, c)) if l > 0 => (l, c),
            _ => self.find(path),
        }
    }
}

/// Like [`options`], for manifests that hold several documents.
pub fn options_multi() -> Options {
    let mut o = options();
    if let Some(b) = o.budget.as_mut() {
        b.max_documents = 64;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_index_paths_to_lines() {
        let text = "a: 1\nfaults:\n  - id: x\n    sysctl:\n      settings: {k: v}\n";
        let l = Locations::of(text);
        assert_eq!(l.find("faults[0].id"), (3, 9));
        assert_eq!(l.find_key("faults[0].sysctl").0, 4);
        assert_eq!(l.find("faults[0].sysctl.settings.k").0, 5);
        assert_eq!(l.find("faults[0].missing.deeper").0, 3);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let c = ["faults", "checks", "setup"];
        assert_eq!(suggest("fualts", c.iter().copied()).as_deref(), Some("faults"));
        assert_eq!(suggest("zzzzzzzz", c.iter().copied()), None);
    }
}
