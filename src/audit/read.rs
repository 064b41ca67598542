//! Reading audit logs: which files (a rotated set in the right order, gzip or plain, or stdin),
//! and the block pipeline that streams them through worker threads.
//!
//! A log is read in blocks cut at newline boundaries; each block goes to one worker, which splits
//! it into lines with memchr and scans them; the workers' partial results are merged at the end.
//! Memory stays at a few blocks whatever the size of the log. A malformed line is never fatal:
//! it is counted and its place kept (source and line number) for the caller to report.

use super::error::AuditError;
use super::event::Event;
use super::scan::{Fields, scan};
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// How many malformed lines are kept with their place (all are counted).
pub const MAX_REPORTED: usize = 100;

/// One input: a file (plain or gzip, detected by its magic bytes) or stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".into(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// Opens the source for reading, decompressing gzip transparently.
    pub fn open(&self) -> Result<Box<dyn Read>, AuditError> {
        let (path, inner): (PathBuf, Box<dyn Read>) = match self {
            Source::Stdin => (PathBuf::from("-"), Box::new(std::io::stdin())),
            Source::File(p) => {
                let f = std::fs::File::open(p).map_err(|e| AuditError::Open { path: p.clone(), source: e })?;
                (p.clone(), Box::new(f))
            }
        };
        let mut r = BufReader::with_capacity(256 * 1024, inner);
        let head = r.fill_buf().map_err(|e| AuditError::Read { path, source: e })?;
        if head.starts_with(&[0x1f, 0x8b]) { Ok(Box::new(MultiGzDecoder::new(r))) } else { Ok(Box::new(r)) }
    }
}

/// Where a rotated file stands in its set: timestamped backups (oldest first), then numbered
/// ones (`audit.log.3` before `audit.log.1`), then the live file.
fn rotation_rank(p: &Path) -> (u8, i64, String) {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    if let Some((_, n)) = base.rsplit_once(".log.")
        && let Ok(n) = n.parse::<i64>()
    {
        return (1, -n, name);
    }
    let stem = base.strip_suffix(".log").unwrap_or(base);
    let has_stamp = stem.len() >= 10 && stem.as_bytes().iter().filter(|b| b.is_ascii_digit()).count() >= 8;
    if has_stamp && (stem.contains('-') || stem.contains('_')) && (base.ends_with(".log") || name.ends_with(".gz")) {
        return (0, 0, name);
    }
    (2, 0, name)
}

fn looks_like_log(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    base.ends_with(".log")
        || base.ends_with(".jsonl")
        || base.rsplit_once(".log.").is_some_and(|(_, n)| n.parse::<u32>().is_ok())
}

/// Turns the user's paths into sources: `-` is stdin, a folder is the audit logs inside it, and
/// the files are put in rotation order (oldest first), so a rotated set reads as one log.
pub fn sources(paths: &[PathBuf]) -> Result<Vec<Source>, AuditError> {
    let mut files = Vec::new();
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Source::Stdin);
        } else if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| AuditError::Open { path: p.clone(), source: e })?;
            let mut found: Vec<PathBuf> =
                rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| f.is_file() && looks_like_log(f)).collect();
            if found.is_empty() {
                return Err(AuditError::EmptyFolder { path: p.clone() });
            }
            found.sort_by_key(|f| rotation_rank(f));
            files.extend(found);
        } else if !p.exists() {
            return Err(AuditError::Open {
                path: p.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        } else {
            files.push(p.clone());
        }
    }
    files.sort_by_key(|f| rotation_rank(f));
    let mut all: Vec<Source> = files.into_iter().map(Source::File).collect();
    all.extend(out);
    Ok(all)
}

/// A line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    pub source: String,
    pub line: u64,
    pub reason: String,
}

/// What was read.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReadStats {
    pub sources: Vec<String>,
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    pub malformed: u64,
    /// The first [`MAX_REPORTED`] malformed lines, in file order.
    pub reported: Vec<Malformed>,
}

/// Where a line stands: its source, its block, and its index in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub block: u64,
    pub index: u32,
    pub source: u32,
}

/// Maps a [`Pos`] to a 1-based line number in its source (known once every block is counted).
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    first_line: Vec<u64>,
}

impl LineIndex {
    pub fn line(&self, p: Pos) -> u64 {
        self.first_line.get(p.block as usize).copied().unwrap_or(0) + u64::from(p.index) + 1
    }
}

/// Tuning for [`fold`].
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub threads: usize,
    pub block_size: usize,
    /// Longer lines are skipped and reported, not buffered.
    pub max_line: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            block_size: 4 << 20,
            max_line: 64 << 20,
        }
    }
}

struct Block {
    seq: u64,
    source: u32,
    data: Vec<u8>,
    /// A line longer than `max_line` stood here; it was dropped, not sent.
    oversized: bool,
}

struct WorkerOut<A> {
    acc: A,
    lines: Vec<(u64, u32, u64)>,
    malformed: u64,
    events: u64,
    reported: Vec<(Pos, String)>,
}

/// Streams every line of `sources` through `each` on `opts.threads` workers, each with its own
/// accumulator from `init`; returns the accumulators (to merge), the stats and the line index.
/// Lines that do not scan are skipped and reported in the stats, never given to `each`.
pub fn fold<A, I, F>(
    sources: &[Source],
    opts: &ReadOptions,
    init: I,
    each: F,
) -> Result<(Vec<A>, ReadStats, LineIndex), AuditError>
where
    A: Send,
    I: Fn() -> A + Sync,
    F: Fn(&mut A, &Fields<'_>, &[u8], Pos) + Sync,
{
    let threads = opts.threads.max(1);
    let (tx, rx) = mpsc::sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
    let mut stats = ReadStats { sources: sources.iter().map(Source::name).collect(), ..ReadStats::default() };
    let (init, each) = (&init, &each);
    let result = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let rx = Arc::clone(&rx);
            let back = back_tx.clone();
            handles.push(s.spawn(move || {
                let mut out =
                    WorkerOut { acc: init(), lines: Vec::new(), malformed: 0, events: 0, reported: Vec::new() };
                loop {
                    let block = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => break,
                    };
                    let Ok(block) = block else { break };
                    work(&block, &mut out, each);
                    let _ = back.send(block.data);
                }
                out
            }));
        }
        drop(back_tx);
        let produced = produce(sources, opts, &tx, &back_rx, &mut stats.bytes);
        drop(tx);
        let mut outs = Vec::new();
        for h in handles {
            outs.push(h.join().map_err(|_| AuditError::Worker("a worker panicked".into()))?);
        }
        produced.map(|_| outs)
    })?;
    let mut blocks: Vec<(u64, u32, u64)> = result.iter().flat_map(|o| o.lines.iter().copied()).collect();
    blocks.sort_unstable();
    let mut index = LineIndex { first_line: vec![0; blocks.len()] };
    let mut current: Option<u32> = None;
    let mut running = 0u64;
    for &(seq, source, n) in &blocks {
        if current != Some(source) {
            current = Some(source);
            running = 0;
        }
        if let Some(slot) = index.first_line.get_mut(seq as usize) {
            *slot = running;
        }
        running += n;
        stats.lines += n;
    }
    let mut reported: Vec<(Pos, String)> = Vec::new();
    let mut accs = Vec::new();
    for o in result {
        stats.malformed += o.malformed;
        stats.events += o.events;
        reported.extend(o.reported);
        accs.push(o.acc);
    }
    reported.sort();
    stats.reported = reported
        .into_iter()
        .take(MAX_REPORTED)
        .map(|(p, reason)| Malformed {
            source: stats.sources.get(p.source as usize).cloned().unwrap_or_default(),
            line: index.line(p),
            reason,
        })
        .collect();
    Ok((accs, stats, index))
}

fn work<A, F>(block: &Block, out: &mut WorkerOut<A>, each: &F)
where
    F: Fn(&mut A, &Fields<'_>, &[u8], Pos),
{
    let report = |out: &mut WorkerOut<A>, index: u32, reason: String| {
        out.malformed += 1;
        if out.reported.len() < MAX_REPORTED {
            out.reported.push((Pos { block: block.seq, index, source: block.source }, reason));
        }
    };
    if block.oversized {
        out.lines.push((block.seq, block.source, 1));
        report(out, 0, "line too long: skipped".into());
        return;
    }
    let data = &block.data[..];
    let mut start = 0usize;
    let mut index = 0u32;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |k| start + k);
        let mut line = &data[start..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            match scan(line) {
                Ok(f) => {
                    out.events += 1;
                    each(&mut out.acc, &f, line, Pos { block: block.seq, index, source: block.source });
                }
                Err(e) => report(out, index, e.to_string()),
            }
        }
        index += 1;
        start = end + 1;
    }
    out.lines.push((block.seq, block.source, u64::from(index)));
}

fn produce(
    sources: &[Source],
    opts: &ReadOptions,
    tx: &mpsc::SyncSender<Block>,
    back: &mpsc::Receiver<Vec<u8>>,
    bytes: &mut u64,
) -> Result<(), AuditError> {
    let mut seq = 0u64;
    let block_size = opts.block_size.max(1024);
    for (si, src) in sources.iter().enumerate() {
        let path = PathBuf::from(src.name());
        let mut r = src.open()?;
        let mut carry: Vec<u8> = Vec::new();
        let mut discarding = false;
        loop {
            let mut buf = back.try_recv().unwrap_or_else(|_| Vec::with_capacity(block_size + block_size / 8));
            buf.clear();
            buf.append(&mut carry);
            let want = block_size as u64;
            let n = (&mut r)
                .take(want)
                .read_to_end(&mut buf)
                .map_err(|e| AuditError::Read { path: path.clone(), source: e })?;
            *bytes += n as u64;
            let eof = n == 0;
            if discarding {
                match memchr::memchr(b'\n', &buf) {
                    Some(k) => {
                        buf.drain(..=k);
                        discarding = false;
                    }
                    None => {
                        if eof {
                            break;
                        }
                        continue;
                    }
                }
            }
            if eof {
                if !buf.is_empty() {
                    send(tx, Block { seq, source: si as u32, data: buf, oversized: false })?;
                    seq += 1;
                }
                break;
            }
            match memchr::memrchr(b'\n', &buf) {
                Some(k) => {
                    carry.extend_from_slice(&buf[k + 1..]);
                    buf.truncate(k + 1);
                    send(tx, Block { seq, source: si as u32, data: buf, oversized: false })?;
                    seq += 1;
                }
                None if buf.len() > opts.max_line => {
                    send(tx, Block { seq, source: si as u32, data: Vec::new(), oversized: true })?;
                    seq += 1;
                    discarding = true;
                }
                None => carry = buf,
            }
        }
    }
    Ok(())
}

fn send(tx: &mpsc::SyncSender<Block>, b: Block) -> Result<(), AuditError> {
    tx.send(b).map_err(|_| AuditError::Worker("the workers stopped early".into()))
}

/// The events of `paths`, one at a time, in file order (the typed model; slower than [`fold`],
/// meant for the debrief timeline and checks). A malformed line is an `Err(Malformed)` item:
/// skip it and go on. An unreadable file is an `Err` too, after which the iterator moves to the
/// next file.
pub fn events(paths: &[PathBuf]) -> Result<Events, AuditError> {
    Ok(Events { sources: sources(paths)?, next: 0, current: None, line: 0, buf: Vec::new() })
}

pub struct Events {
    sources: Vec<Source>,
    next: usize,
    current: Option<(String, BufReader<Box<dyn Read>>)>,
    line: u64,
    buf: Vec<u8>,
}

impl Iterator for Events {
    type Item = Result<Event, AuditError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let src = self.sources.get(self.next)?;
                self.next += 1;
                self.line = 0;
                match src.open() {
                    Ok(r) => self.current = Some((src.name(), BufReader::with_capacity(1 << 20, r))),
                    Err(e) => return Some(Err(e)),
                }
            }
            let (name, r) = self.current.as_mut()?;
            self.buf.clear();
            match r.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.current = None;
                    continue;
                }
                Ok(_) => {
                    self.line += 1;
                    let line = self.buf.trim_ascii();
                    if line.is_empty() {
                        continue;
                    }
                    return Some(Event::from_json(line).map_err(|reason| AuditError::Malformed {
                        source_name: name.clone(),
                        line: self.line,
                        reason,
                    }));
                }
                Err(e) => {
                    let path = PathBuf::from(name.as_str());
                    self.current = None;
                    return Some(Err(AuditError::Read { path, source: e }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_sets_read_oldest_first() {
        let mut v: Vec<PathBuf> = [
            "audit.log",
            "audit.log.1",
            "audit-2024-05-01T10-00-00.000.log.gz",
            "audit.log.2",
            "audit-2024-04-30T10-00-00.000.log",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        v.sort_by_key(|p| rotation_rank(p));
        let names: Vec<String> = v.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "audit-2024-04-30T10-00-00.000.log",
                "audit-2024-05-01T10-00-00.000.log.gz",
                "audit.log.2",
                "audit.log.1",
                "audit.log"
            ]
        );
    }
}
