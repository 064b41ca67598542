//! A targeted field scanner for one audit event line: it reads the top-level object, keeps
//! borrowed slices of the few fields a summary needs, and skips everything else (request and
//! response bodies above all) without building it. This is what makes `klab audit summary` run at
//! memory speed instead of JSON-parser speed.
//!
//! It must never panic or read out of bounds on any input; a line it cannot follow is an `Err`
//! with a short reason (the caller reports it with its line number and moves on). It checks the
//! structure of the line strictly but does not validate every scalar inside skipped bodies: the
//! typed model in [`crate::audit::event`] is the strict parser.

use memchr::memchr2;
use std::borrow::Cow;

/// A JSON string as it stands in the line (without quotes); unescaped only when asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Text<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> Text<'a> {
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Compares with `s` without unescaping when the text has no escapes.
    pub fn is(&self, s: &str) -> bool {
        if self.escaped { self.get() == s } else { self.raw == s.as_bytes() }
    }

    /// The raw bytes between the quotes (escapes not resolved).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The string value, unescaped (invalid UTF-8 replaced, never an error).
    pub fn get(&self) -> Cow<'a, str> {
        if !self.escaped {
            return String::from_utf8_lossy(self.raw);
        }
        Cow::Owned(unescape(self.raw))
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let s = std::str::from_utf8(&b[..4]).ok()?;
    u32::from_str_radix(s, 16).ok()
}

fn unescape(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' || i + 1 >= raw.len() {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        match raw[i] {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'u' => {
                let mut ch = hex4(&raw[i + 1..]);
                let mut used = if ch.is_some() { 4 } else { 0 };
                if let Some(hi) = ch.filter(|h| (0xD800..0xDC00).contains(h)) {
                    let lo = (raw.get(i + 5..i + 7) == Some(b"\\u")).then(|| hex4(&raw[i + 7..])).flatten();
                    ch = lo
                        .filter(|l| (0xDC00..0xE000).contains(l))
                        .map(|l| 0x10000 + ((hi - 0xD800) << 10) + (l - 0xDC00));
                    used = if ch.is_some() { 10 } else { 4 };
                }
                let c = ch.and_then(char::from_u32).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += used;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields of one event that summaries, filters and timelines use, borrowed from the line.
#[derive(Clone, Debug, Default)]
pub struct Fields<'a> {
    pub api_version: Text<'a>,
    pub kind: Text<'a>,
    pub audit_id: Text<'a>,
    pub level: Text<'a>,
    pub stage: Text<'a>,
    pub verb: Text<'a>,
    pub request_uri: Text<'a>,
    pub username: Text<'a>,
    groups_raw: &'a [u8],
    pub impersonated_user: Text<'a>,
    source_ips_raw: &'a [u8],
    pub user_agent: Text<'a>,
    pub resource: Text<'a>,
    pub subresource: Text<'a>,
    pub namespace: Text<'a>,
    pub name: Text<'a>,
    pub api_group: Text<'a>,
    pub code: Option<u16>,
    pub decision: Text<'a>,
    pub reason: Text<'a>,
    pub received: Text<'a>,
    pub stage_time: Text<'a>,
    /// `v1beta1`'s `timestamp`, a fallback for `received`.
    pub timestamp: Text<'a>,
}

impl<'a> Fields<'a> {
    /// The user's groups, in order.
    pub fn groups(&self) -> Strings<'a> {
        Strings::new(self.groups_raw)
    }

    /// The first source IP: the client as the apiserver saw it (later ones are proxies).
    pub fn source_ip(&self) -> Text<'a> {
        Strings::new(self.source_ips_raw).next().unwrap_or_default()
    }

    /// When the request arrived, in microseconds since the epoch.
    pub fn received_micros(&self) -> Option<i64> {
        let t = if self.received.is_empty() { self.timestamp } else { self.received };
        let t = if t.is_empty() { self.stage_time } else { t };
        std::str::from_utf8(t.raw).ok().and_then(crate::audit::time::parse_micros)
    }

    /// stageTimestamp − requestReceivedTimestamp, in microseconds, when both are there.
    pub fn latency_micros(&self) -> Option<i64> {
        let a = std::str::from_utf8(self.received.raw).ok().and_then(crate::audit::time::parse_micros)?;
        let b = std::str::from_utf8(self.stage_time.raw).ok().and_then(crate::audit::time::parse_micros)?;
        (b >= a).then_some(b - a)
    }
}

/// The string elements of a JSON array slice (non-strings are skipped).
pub struct Strings<'a> {
    p: P<'a>,
    started: bool,
}

impl<'a> Strings<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Strings { p: P { b: raw, i: 0 }, started: false }
    }
}

impl<'a> Iterator for Strings<'a> {
    type Item = Text<'a>;
    fn next(&mut self) -> Option<Text<'a>> {
        let p = &mut self.p;
        loop {
            p.ws();
            if !self.started {
                if p.peek()? != b'[' {
                    return None;
                }
                p.i += 1;
                self.started = true;
                continue;
            }
            match p.peek()? {
                b']' => return None,
                b',' => p.i += 1,
                b'"' => return p.string().ok(),
                _ => p.skip().ok()?,
            }
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` equal to `c`, as high bits (the lowest one is exact; higher ones may not be).
#[inline(always)]
fn has_byte(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The first quote or backslash at or after `i`: eight bytes at a time for short strings (most of an
/// audit event), memchr's SIMD for long ones.
#[inline(always)]
fn find_quote_or_backslash(b: &[u8], mut i: usize) -> Option<usize> {
    let stop = b.len().min(i.saturating_add(64));
    while i + 8 <= stop {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let w = u64::from_le_bytes(w);
        let m = has_byte(w, b'"') | has_byte(w, b'\\');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    memchr2(b'"', b'\\', b.get(i..)?).map(|k| i + k)
}

/// Why a line could not be followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanError {
    pub reason: &'static str,
    pub at: usize,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (byte {})", self.reason, self.at + 1)
    }
}

type R<T> = Result<T, ScanError>;

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn err<T>(&self, reason: &'static str) -> R<T> {
        Err(ScanError { reason, at: self.i.min(self.b.len()) })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, reason: &'static str) -> R<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(reason)
        }
    }

    /// A string starting at the cursor (which must be on its opening quote).
    fn string(&mut self) -> R<Text<'a>> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        let b = self.b;
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match find_quote_or_backslash(b, i) {
                None => {
                    self.i = b.len();
                    return self.err("unterminated string");
                }
                Some(k) if b[k] == b'"' => {
                    self.i = k + 1;
                    return Ok(Text { raw: &b[start..k], escaped });
                }
                Some(k) => {
                    escaped = true;
                    i = k + 2;
                    if i > b.len() {
                        self.i = b.len();
                        return self.err("unterminated string");
                    }
                }
            }
        }
    }

    /// A string, or `null` (an empty text).
    fn text(&mut self) -> R<Text<'a>> {
        self.ws();
        if self.peek() == Some(b'"') { self.string() } else { self.scalar().map(|_| Text::default()) }
    }

    fn scalar(&mut self) -> R<&'a [u8]> {
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n' | b':' | b'"' | b'{' | b'[') {
                break;
            }
            self.i += 1;
        }
        let s = &self.b[start..self.i];
        match s.first() {
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => Ok(s),
            _ => {
                self.i = start;
                self.err("expected a value")
            }
        }
    }

    /// Skips one value of any kind.
    fn skip(&mut self) -> R<()> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{' | b'[') => self.nested(),
            Some(_) => self.scalar().map(drop),
            None => self.err("unexpected end of line"),
        }
    }

    /// Skips an object or array, jumping over strings with memchr.
    fn nested(&mut self) -> R<()> {
        let mut depth: u32 = 0;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        self.err("unexpected end of line inside an object")
    }

    /// The raw text of one value (for arrays read later).
    fn raw(&mut self) -> R<&'a [u8]> {
        self.ws();
        let start = self.i;
        self.skip()?;
        Ok(&self.b[start..self.i])
    }

    /// Walks an object's members; `member` must consume each value. `null` is an empty object.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> R<()>) -> R<()> {
        self.ws();
        if self.peek() != Some(b'{') {
            return self.scalar().and_then(|s| if s == b"null" { Ok(()) } else { self.err("expected an object") });
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.expect(b':', "expected `:` after a key")?;
            self.ws();
            member(self, key.raw)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => return self.err("expected `,` or `}`"),
                None => return self.err("unexpected end of line"),
            }
        }
    }
}

/// Scans one line. Whitespace around the object is allowed; anything else after it is not.
pub fn scan(line: &[u8]) -> Result<Fields<'_>, ScanError> {
    let mut f = Fields::default();
    let mut p = P { b: line, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return p.err("not a JSON object");
    }
    p.object(|p, key| {
        match key {
            b"verb" => f.verb = p.text()?,
            b"stage" => f.stage = p.text()?,
            b"requestURI" => f.request_uri = p.text()?,
            b"userAgent" => f.user_agent = p.text()?,
            b"requestReceivedTimestamp" => f.received = p.text()?,
            b"stageTimestamp" => f.stage_time = p.text()?,
            b"timestamp" => f.timestamp = p.text()?,
            b"auditID" => f.audit_id = p.text()?,
            b"level" => f.level = p.text()?,
            b"kind" => f.kind = p.text()?,
            b"apiVersion" => f.api_version = p.text()?,
            b"sourceIPs" => f.source_ips_raw = p.raw()?,
            b"user" => p.object(|p, k| {
                match k {
                    b"username" => f.username = p.text()?,
                    b"groups" => f.groups_raw = p.raw()?,
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            b"impersonatedUser" => p.object(|p, k| {
                if k == b"username" {
                    f.impersonated_user = p.text()?
                } else {
                    p.skip()?
                }
                Ok(())
            })?,
            b"objectRef" => p.object(|p, k| {
                match k {
                    b"resource" => f.resource = p.text()?,
                    b"subresource" => f.subresource = p.text()?,
                    b"namespace" => f.namespace = p.text()?,
                    b"name" => f.name = p.text()?,
                    b"apiGroup" => f.api_group = p.text()?,
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            b"responseStatus" => p.object(|p, k| {
                if k == b"code" {
                    let s = p.scalar()?;
                    f.code = std::str::from_utf8(s).ok().and_then(|s| s.parse().ok());
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            b"annotations" => p.object(|p, k| {
                match k {
                    b"authorization.k8s.io/decision" => f.decision = p.text()?,
                    b"authorization.k8s.io/reason" => f.reason = p.text()?,
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    p.ws();
    if p.i != line.len() {
        return p.err("text after the end of the event");
    }
    if !f.kind.is_empty() && !f.kind.is("Event") {
        return Err(ScanError { reason: "not an audit Event (another kind)", at: 0 });
    }
    if f.verb.is_empty() && f.audit_id.is_empty() {
        return Err(ScanError { reason: "not an audit event (no verb, no auditID)", at: 0 });
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods?limit=500\u0026watch=1","verb":"list","user":{"username":"alice","groups":["dev","system:authenticated"],"extra":{"x":["y"]}},"sourceIPs":["10.0.0.7","10.0.0.1"],"userAgent":"kubectl/v1.30.0","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestObject":{"a":[1,2,{"b":"}]\"{["}],"c":null},"requestReceivedTimestamp":"2024-05-01T12:00:00.000000Z","stageTimestamp":"2024-05-01T12:00:00.012500Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed"}}"#;

    #[test]
    fn reads_the_fields_and_skips_bodies() {
        let f = scan(LINE.as_bytes()).expect("scans");
        assert!(f.verb.is("list") && f.stage.is("ResponseComplete") && f.username.is("alice"));
        assert_eq!(f.groups().map(|g| g.get().into_owned()).collect::<Vec<_>>(), ["dev", "system:authenticated"]);
        assert!(f.source_ip().is("10.0.0.7"));
        assert_eq!(f.code, Some(200));
        assert!(f.resource.is("pods") && f.namespace.is("default") && f.decision.is("allow"));
        assert_eq!(f.request_uri.get(), "/api/v1/namespaces/default/pods?limit=500&watch=1");
        assert_eq!(f.latency_micros(), Some(12_500));
    }

    #[test]
    fn agrees_with_the_typed_model() {
        let e = crate::audit::Event::from_json(LINE.as_bytes()).expect("parses");
        let f = scan(LINE.as_bytes()).expect("scans");
        assert_eq!(f.username.get(), e.user.username);
        assert_eq!(f.request_uri.get(), e.request_uri);
        assert_eq!(f.code, e.code());
    }

    #[test]
    fn broken_lines_are_errors_not_panics() {
        let bad: &[&[u8]] = &[
            b"",
            b"{",
            b"{\"verb\":",
            b"{\"verb\":\"get",
            b"[1,2]",
            b"{\"verb\":\"get\"} x",
            b"{\"verb\":\"get\\",
            b"{\"a\":{\"b\":[}",
            b"\xff\xfe",
            b"{\"kind\":\"Pod\",\"verb\":\"get\"}",
            b"{}",
        ];
        for b in bad {
            assert!(scan(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        for n in 0..LINE.len() {
            assert!(scan(&LINE.as_bytes()[..n]).is_err());
        }
    }

    #[test]
    fn unescapes_unicode_and_surrogates() {
        assert_eq!(unescape(br#"a\u00e9\ud83d\ude00\n\"\\"#), "a\u{e9}\u{1F600}\n\"\\");
        assert_eq!(unescape(br"\ud83d"), "\u{FFFD}");
        assert_eq!(unescape(br"\u12"), "\u{FFFD}12");
    }
}
