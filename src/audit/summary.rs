//! `summary`: how many calls, how fast, grouped by any mix of user, group, verb, resource,
//! subresource, namespace, status code, user agent, source IP… — the questions one asks of an
//! audit log ("who calls the most", "401s by source IP", "403s by user and resource").
//!
//! Each worker folds its blocks into a small map (group → count and latency histogram); the maps
//! are merged at the end. Nothing per event is kept, so memory depends on the number of groups,
//! never on the size of the log.

use super::error::AuditError;
use super::filter::Filter;
use super::read::{ReadOptions, ReadStats, Source, fold};
use super::scan::{Fields, Text};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

/// What to group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Key {
    User,
    /// Each of the user's groups (an event counts once under each of its groups).
    Group,
    Verb,
    Resource,
    Subresource,
    Namespace,
    Name,
    Code,
    UserAgent,
    /// The first of `sourceIPs`: the client as the apiserver saw it.
    SourceIp,
    Stage,
    /// The authorizer's `allow` / `forbid`.
    Decision,
    ApiGroup,
    ImpersonatedUser,
}

impl Key {
    pub const ALL: [Key; 14] = [
        Key::User,
        Key::Group,
        Key::Verb,
        Key::Resource,
        Key::Subresource,
        Key::Namespace,
        Key::Name,
        Key::Code,
        Key::UserAgent,
        Key::SourceIp,
        Key::Stage,
        Key::Decision,
        Key::ApiGroup,
        Key::ImpersonatedUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Key::User => "user",
            Key::Group => "group",
            Key::Verb => "verb",
            Key::Resource => "resource",
            Key::Subresource => "subresource",
            Key::Namespace => "namespace",
            Key::Name => "name",
            Key::Code => "code",
            Key::UserAgent => "user-agent",
            Key::SourceIp => "source-ip",
            Key::Stage => "stage",
            Key::Decision => "decision",
            Key::ApiGroup => "api-group",
            Key::ImpersonatedUser => "impersonated-user",
        }
    }

    /// Parses `user,verb,resource`.
    pub fn parse_list(s: &str) -> Result<Vec<Key>, AuditError> {
        let keys =
            s.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Key::from_str).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AuditError::BadArgument { what: "grouping", value: s.into(), expected: expected_keys() });
        }
        Ok(keys)
    }
}

fn expected_keys() -> String {
    format!("one or more of {}", Key::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "))
}

impl FromStr for Key {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Key, AuditError> {
        let norm = s.to_ascii_lowercase().replace('_', "-");
        let alias = match norm.as_str() {
            "username" | "users" => "user",
            "groups" | "usergroup" => "group",
            "useragent" | "agent" | "ua" => "user-agent",
            "ip" | "sourceip" | "source" | "src" => "source-ip",
            "status" | "status-code" => "code",
            "ns" => "namespace",
            "apigroup" => "api-group",
            other => other,
        };
        Key::ALL.into_iter().find(|k| k.name() == alias).ok_or_else(|| AuditError::BadArgument {
            what: "grouping key",
            value: s.into(),
            expected: expected_keys(),
        })
    }
}

/// A latency histogram: 16 buckets per power of two (about 6 % resolution), microseconds.
const BUCKETS: usize = 32 + 44 * 16;

fn bucket(v: u64) -> usize {
    if v < 32 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize;
    let m = ((v >> (e - 4)) & 15) as usize;
    (32 + (e - 5) * 16 + m).min(BUCKETS - 1)
}

/// The middle of a bucket.
fn bucket_value(i: usize) -> u64 {
    if i < 32 {
        return i as u64;
    }
    let e = (i - 32) / 16 + 5;
    let m = ((i - 32) % 16) as u64;
    let lower = (16 + m) << (e - 4);
    lower + (1u64 << (e - 4)) / 2
}

#[derive(Clone)]
struct Agg {
    count: u64,
    timed: u64,
    min_us: u64,
    max_us: u64,
    /// The first [`EXACT`] samples, so small groups get exact percentiles.
    exact: Vec<u64>,
    hist: Option<Box<[u32; BUCKETS]>>,
}

/// Up to this many samples a group's percentiles are exact; beyond, they come from the histogram.
const EXACT: usize = 64;

impl Agg {
    fn new() -> Agg {
        Agg { count: 0, timed: 0, min_us: u64::MAX, max_us: 0, exact: Vec::new(), hist: None }
    }

    fn add(&mut self, latency: Option<i64>) {
        self.count += 1;
        if let Some(l) = latency {
            let l = l.max(0) as u64;
            self.timed += 1;
            self.max_us = self.max_us.max(l);
            self.min_us = self.min_us.min(l);
            if self.exact.len() < EXACT {
                self.exact.push(l);
            }
            let h = self.hist.get_or_insert_with(|| Box::new([0; BUCKETS]));
            h[bucket(l)] += 1;
        }
    }

    fn merge(&mut self, o: Agg) {
        self.count += o.count;
        self.timed += o.timed;
        self.max_us = self.max_us.max(o.max_us);
        self.min_us = self.min_us.min(o.min_us);
        if self.exact.len() + o.exact.len() <= EXACT {
            self.exact.extend_from_slice(&o.exact);
        } else {
            self.exact.clear();
        }
        match (&mut self.hist, o.hist) {
            (Some(a), Some(b)) => a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += y),
            (a @ None, b) => *a = b,
            (Some(_), None) => {}
        }
    }

    fn percentile(&self, p: f64) -> Option<u64> {
        let h = self.hist.as_ref()?;
        let rank = ((p * self.timed as f64).ceil() as u64).max(1);
        if self.exact.len() as u64 == self.timed {
            let mut v = self.exact.clone();
            v.sort_unstable();
            return v.get(rank as usize - 1).copied();
        }
        let mut seen = 0u64;
        for (i, n) in h.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return Some(bucket_value(i).clamp(self.min_us.min(self.max_us), self.max_us));
            }
        }
        Some(self.max_us)
    }
}

/// FxHash: group keys are short and trusted enough; SipHash would cost more than the scan.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

struct Acc {
    groups: FxMap<Box<[u8]>, Agg>,
    first: i64,
    last: i64,
    matched: u64,
    key: Vec<u8>,
}

fn push_text(buf: &mut Vec<u8>, t: Text<'_>) {
    if t.raw().contains(&b'\\') {
        push_bytes(buf, t.get().as_bytes());
    } else {
        push_bytes(buf, t.raw());
    }
}

fn push_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

fn push_key(buf: &mut Vec<u8>, k: Key, f: &Fields<'_>, group: Text<'_>) {
    match k {
        Key::User => push_text(buf, f.username),
        Key::Group => push_text(buf, group),
        Key::Verb => push_text(buf, f.verb),
        Key::Resource => push_text(buf, f.resource),
        Key::Subresource => push_text(buf, f.subresource),
        Key::Namespace => push_text(buf, f.namespace),
        Key::Name => push_text(buf, f.name),
        Key::Code => match f.code {
            Some(c) => push_bytes(buf, c.to_string().as_bytes()),
            None => push_bytes(buf, b""),
        },
        Key::UserAgent => push_text(buf, f.user_agent),
        Key::SourceIp => push_text(buf, f.source_ip()),
        Key::Stage => push_text(buf, f.stage),
        Key::Decision => push_text(buf, f.decision),
        Key::ApiGroup => push_text(buf, f.api_group),
        Key::ImpersonatedUser => push_text(buf, f.impersonated_user),
    }
}

fn decode_key(mut b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let end = (4 + n).min(b.len());
        out.push(String::from_utf8_lossy(&b[4..end]).into_owned());
        b = &b[end..];
    }
    out
}

impl Acc {
    fn add(&mut self, by: &[Key], f: &Fields<'_>) {
        self.matched += 1;
        if let Some(t) = f.received_micros() {
            self.first = self.first.min(t);
            self.last = self.last.max(t);
        }
        let latency = if f.stage.is("RequestReceived") { None } else { f.latency_micros() };
        if by.contains(&Key::Group) {
            let mut any = false;
            for g in f.groups() {
                any = true;
                self.add_one(by, f, g, latency);
            }
            if !any {
                self.add_one(by, f, Text::default(), latency);
            }
        } else {
            self.add_one(by, f, Text::default(), latency);
        }
    }

    fn add_one(&mut self, by: &[Key], f: &Fields<'_>, group: Text<'_>, latency: Option<i64>) {
        self.key.clear();
        for &k in by {
            push_key(&mut self.key, k, f, group);
        }
        match self.groups.get_mut(&self.key[..]) {
            Some(a) => a.add(latency),
            None => {
                let mut a = Agg::new();
                a.add(latency);
                self.groups.insert(self.key.clone().into_boxed_slice(), a);
            }
        }
    }
}

/// What to summarise and how.
#[derive(Clone, Debug)]
pub struct SummaryOptions {
    pub by: Vec<Key>,
    pub filter: Filter,
    /// Keep the largest `top` groups (0: all of them).
    pub top: usize,
    pub read: ReadOptions,
}

/// Latency percentiles of a group, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One group: its key values (in the order of `by`), count, share and rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub key: Vec<String>,
    pub count: u64,
    /// Fraction of the matched events, 0–1.
    pub share: f64,
    /// Calls per second over the log's time span.
    pub per_second: Option<f64>,
    pub latency: Option<Latency>,
}

/// The result of a summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub by: Vec<Key>,
    pub rows: Vec<Row>,
    /// Groups in all, before `top` cut the list.
    pub groups: usize,
    /// Events that passed the filter.
    pub matched: u64,
    /// RFC 3339, the earliest and latest matched request.
    pub first: Option<String>,
    pub last: Option<String>,
    pub span_seconds: f64,
    pub read: ReadStats,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Reads `sources` once and summarises the events that pass `opts.filter`.
pub fn summarize(sources: &[Source], opts: &SummaryOptions) -> Result<Summary, AuditError> {
    let by = &opts.by;
    let (accs, read, _) = fold(
        sources,
        &opts.read,
        || Acc { groups: FxMap::default(), first: i64::MAX, last: i64::MIN, matched: 0, key: Vec::with_capacity(256) },
        |acc, f, _, _| {
            if opts.filter.matches(f) {
                acc.add(by, f);
            }
        },
    )?;
    let mut merged: FxMap<Box<[u8]>, Agg> = FxMap::default();
    let (mut first, mut last, mut matched) = (i64::MAX, i64::MIN, 0u64);
    for a in accs {
        first = first.min(a.first);
        last = last.max(a.last);
        matched += a.matched;
        for (k, v) in a.groups {
            match merged.get_mut(&k) {
                Some(m) => m.merge(v),
                None => {
                    merged.insert(k, v);
                }
            }
        }
    }
    let span_us = if last >= first { last - first } else { 0 };
    let span_seconds = span_us as f64 / 1e6;
    let total: u64 = merged.values().map(|a| a.count).sum();
    let mut rows: Vec<Row> = merged
        .into_iter()
        .map(|(k, a)| Row {
            key: decode_key(&k),
            count: a.count,
            share: if total > 0 { a.count as f64 / total as f64 } else { 0.0 },
            per_second: (span_seconds > 0.0).then(|| a.count as f64 / span_seconds),
            latency: a.hist.is_some().then(|| Latency {
                p50_ms: ms(a.percentile(0.50).unwrap_or(0)),
                p90_ms: ms(a.percentile(0.90).unwrap_or(0)),
                p99_ms: ms(a.percentile(0.99).unwrap_or(0)),
                max_ms: ms(a.max_us),
            }),
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    let groups = rows.len();
    if opts.top > 0 {
        rows.truncate(opts.top);
    }
    let stamp = |t: i64| (t != i64::MAX && t != i64::MIN).then(|| super::time::format_micros(t));
    Ok(Summary { by: by.clone(), rows, groups, matched, first: stamp(first), last: stamp(last), span_seconds, read })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut prev = 0;
        for v in [0u64, 1, 31, 32, 33, 63, 64, 100, 1000, 12_345, 1 << 20, 1 << 40] {
            let b = bucket(v);
            assert!(b >= prev);
            prev = b;
            let mid = bucket_value(b) as f64;
            assert!((mid - v as f64).abs() <= (v as f64) * 0.07 + 1.0, "{v} -> {mid}");
        }
    }

    #[test]
    fn percentiles_pick_the_right_rank() {
        let mut a = Agg::new();
        for v in 1..=100i64 {
            a.add(Some(v * 1000));
        }
        let p50 = a.percentile(0.5).unwrap_or(0) as f64;
        assert!((p50 - 50_000.0).abs() < 3_500.0, "{p50}");
        assert_eq!(a.percentile(1.0), Some(100_000));
    }

    #[test]
    fn keys_parse_with_aliases_and_reject_unknowns() {
        assert_eq!(Key::parse_list("user,verb,resource").ok(), Some(vec![Key::User, Key::Verb, Key::Resource]));
        assert_eq!(Key::parse_list("ip, ua").ok(), Some(vec![Key::SourceIp, Key::UserAgent]));
        assert!(Key::parse_list("colour").is_err() && Key::parse_list("").is_err());
    }
}
