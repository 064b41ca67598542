//! `query`: one yes-or-no question to an audit log — "did user U do verb V on resource R
//! (optionally in namespace N, on object NAME, with status code C) since T?" — with the first and
//! last matching calls as evidence. This is what an `audit` check kind and the debrief use.
//!
//! It reads the log once with the fast scanner, keeps two hits and a count, and never prints.

use super::error::AuditError;
use super::filter::{CodeMatch, Filter, Pattern};
use super::read::{ReadOptions, ReadStats, Source, fold, sources};
use super::scan::Fields;
use serde::Serialize;
use std::path::PathBuf;

/// The question. `user` may end with `*` (`system:serviceaccount:kube-system:*`); `resource` may
/// name a subresource (`pods/exec`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Question {
    pub user: Option<String>,
    pub verb: Option<String>,
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub code: Option<CodeMatch>,
    pub since: Option<jiff::Timestamp>,
}

impl Question {
    fn filter(&self) -> Filter {
        Filter {
            verbs: self.verb.iter().cloned().collect(),
            codes: self.code.iter().copied().collect(),
            users: self.user.iter().map(|u| Pattern(u.clone())).collect(),
            resources: self.resource.iter().cloned().collect(),
            namespaces: self.namespace.iter().cloned().collect(),
            since: self.since.map(|t| t.as_microsecond()),
            ..Filter::default()
        }
    }
}

/// One matching call: the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub time: String,
    pub micros: i64,
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub code: Option<u16>,
    pub source: String,
    pub line: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    pub matches: u64,
    pub first: Option<Hit>,
    pub last: Option<Hit>,
    pub read: ReadStats,
}

impl Answer {
    /// Yes: at least one call matched.
    pub fn yes(&self) -> bool {
        self.matches > 0
    }
}

fn hit(f: &Fields<'_>, t: i64) -> Hit {
    Hit {
        time: super::time::format_micros(t),
        micros: t,
        user: f.username.get().into_owned(),
        verb: f.verb.get().into_owned(),
        resource: if f.subresource.is_empty() {
            f.resource.get().into_owned()
        } else {
            format!("{}/{}", f.resource.get(), f.subresource.get())
        },
        namespace: f.namespace.get().into_owned(),
        name: f.name.get().into_owned(),
        code: f.code,
        source: String::new(),
        line: 0,
    }
}

/// A hit and where it stands, before line numbers are known.
type Placed = Option<(Hit, super::read::Pos)>;

/// Asks the question of the logs at `paths` (files, folders of rotated logs, or `-`).
pub fn ask(paths: &[PathBuf], q: &Question) -> Result<Answer, AuditError> {
    ask_sources(&sources(paths)?, q, &ReadOptions::default())
}

/// Like [`ask`], on sources already resolved.
pub fn ask_sources(srcs: &[Source], q: &Question, opts: &ReadOptions) -> Result<Answer, AuditError> {
    let filter = q.filter();
    type Acc = (u64, Option<(Hit, super::read::Pos)>, Option<(Hit, super::read::Pos)>);
    let (accs, read, index) = fold(
        srcs,
        opts,
        || -> Acc { (0, None, None) },
        |acc, f, _, pos| {
            if !filter.matches(f) || q.name.as_deref().is_some_and(|n| !f.name.is(n)) {
                return;
            }
            acc.0 += 1;
            let t = f.received_micros().unwrap_or(i64::MIN);
            if acc.1.as_ref().is_none_or(|(h, p)| (t, pos) < (h.micros, *p)) {
                acc.1 = Some((hit(f, t), pos));
            }
            if acc.2.as_ref().is_none_or(|(h, p)| (t, pos) > (h.micros, *p)) {
                acc.2 = Some((hit(f, t), pos));
            }
        },
    )?;
    let mut matches = 0;
    let (mut first, mut last): (Placed, Placed) = (None, None);
    for (n, a, b) in accs {
        matches += n;
        if let Some(a) = a
            && first.as_ref().is_none_or(|f| (a.0.micros, a.1) < (f.0.micros, f.1))
        {
            first = Some(a);
        }
        if let Some(b) = b
            && last.as_ref().is_none_or(|l| (b.0.micros, b.1) > (l.0.micros, l.1))
        {
            last = Some(b);
        }
    }
    let place = |x: Placed| {
        x.map(|(mut h, p)| {
            h.source = read.sources.get(p.source as usize).cloned().unwrap_or_default();
            h.line = index.line(p);
            h
        })
    };
    let (first, last) = (place(first), place(last));
    Ok(Answer { matches, first, last, read })
}
