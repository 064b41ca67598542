//! Grading a diagnosis: which of the scenario's causes the trainee named (found), which they did
//! not (missed), and which red herrings they blamed. Pure: data in, data out.
//!
//! The candidates a trainee picks from are the causes and the red herrings, shuffled with a seed
//! that is stable for one session (so a re-run shows the same order) and shown without saying
//! which is which.

use crate::scenario::model::Diagnosis;
use serde::Serialize;

/// One thing the trainee may blame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub id: String,
    pub summary: String,
}

/// The causes and red herrings of `d`, shuffled by `seed` (the same seed, the same order).
pub fn candidates(d: &Diagnosis, seed: u64) -> Vec<Candidate> {
    let mut all: Vec<Candidate> = d
        .causes
        .iter()
        .map(|c| Candidate { id: c.id.value.clone(), summary: c.summary.trim().to_string() })
        .chain(
            d.red_herrings.iter().map(|r| Candidate { id: r.id.value.clone(), summary: r.summary.trim().to_string() }),
        )
        .collect();
    // Fisher–Yates with splitmix64: a fixed algorithm, so the order never changes between
    // klab versions for the same session.
    let mut state = seed;
    for i in (1..all.len()).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        all.swap(i, j);
    }
    all
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable seed for one session: FNV-1a of the session's start time and scenario id.
pub fn session_seed(started_at: &str, scenario: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in started_at.bytes().chain([0u8]).chain(scenario.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Ids the trainee named that are neither a cause nor a red herring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownIds(pub Vec<String>);

/// The grade of one diagnosis attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grade {
    /// Causes named, in the scenario's order.
    pub found: Vec<String>,
    /// Causes not named, in the scenario's order. Never show these before the trainee gave up.
    #[serde(skip)]
    pub missed: Vec<String>,
    /// Red herrings named.
    pub wrongly_blamed: Vec<String>,
    pub causes_total: usize,
}

impl Grade {
    /// Partial credit: the share of causes found (0.0–1.0); a diagnosis key without causes
    /// counts as complete.
    pub fn credit(&self) -> f64 {
        if self.causes_total == 0 { 1.0 } else { self.found.len() as f64 / self.causes_total as f64 }
    }
    /// Every cause found and no red herring blamed.
    pub fn complete(&self) -> bool {
        self.missed.is_empty() && self.wrongly_blamed.is_empty()
    }
}

/// Grades the ids a trainee named (duplicates count once). Unknown ids are an error that lists
/// them, so the caller can say which ids exist.
pub fn grade(d: &Diagnosis, named: &[String]) -> Result<Grade, UnknownIds> {
    let is_cause = |id: &str| d.causes.iter().any(|c| c.id.value == id);
    let is_herring = |id: &str| d.red_herrings.iter().any(|r| r.id.value == id);
    let unknown: Vec<String> = named.iter().filter(|n| !is_cause(n) && !is_herring(n)).cloned().collect();
    if !unknown.is_empty() {
        return Err(UnknownIds(unknown));
    }
    let named_has = |id: &str| named.iter().any(|n| n == id);
    let (found, missed): (Vec<String>, Vec<String>) =
        d.causes.iter().map(|c| c.id.value.clone()).partition(|id| named_has(id));
    let wrongly_blamed =
        d.red_herrings.iter().map(|r| r.id.value.clone()).filter(|id| named_has(id)).collect::<Vec<_>>();
    Ok(Grade { found, missed, wrongly_blamed, causes_total: d.causes.len() })
}

/// Parses what a trainee typed at the picker (`1 3`, `1,3`, `2`) into 0-based indices of a list
/// of `n` candidates. Duplicates count once; order is kept.
pub fn parse_picks(line: &str, n: usize) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for tok in line.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()) {
        let k: usize = tok.parse().map_err(|_| format!("`{tok}` is not a number from the list"))?;
        if k == 0 || k > n {
            return Err(format!("{k} is not on the list (1–{n})"));
        }
        if !out.contains(&(k - 1)) {
            out.push(k - 1);
        }
    }
    if out.is_empty() {
        return Err("name at least one number".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Diagnosis {
        serde_json::from_value(serde_json::json!({
            "causes": [
                {"id": "quota", "summary": "The quota is small.", "faults": ["a"]},
                {"id": "full", "summary": "The database is full.", "faults": ["b"]},
                {"id": "policy", "summary": "A policy blocks traffic.", "faults": ["c"]}
            ],
            "redHerrings": [
                {"id": "disk", "summary": "The disk is full."},
                {"id": "dns", "summary": "DNS is down."}
            ]
        }))
        .unwrap()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn found_missed_and_wrongly_blamed_with_partial_credit() {
        let g = grade(&key(), &ids(&["full", "dns", "quota"])).unwrap();
        assert_eq!(g.found, ids(&["quota", "full"]));
        assert_eq!(g.missed, ids(&["policy"]));
        assert_eq!(g.wrongly_blamed, ids(&["dns"]));
        assert!((g.credit() - 2.0 / 3.0).abs() < 1e-9, "{}", g.credit());
        assert!(!g.complete());
        let all = grade(&key(), &ids(&["policy", "full", "quota", "quota"])).unwrap();
        assert!(all.complete() && (all.credit() - 1.0).abs() < 1e-9, "{all:?}");
        let herring_only = grade(&key(), &ids(&["disk"])).unwrap();
        assert_eq!((herring_only.found.len(), herring_only.credit()), (0, 0.0));
        assert!(!herring_only.complete());
        let everything = grade(&key(), &ids(&["policy", "full", "quota", "disk"])).unwrap();
        assert!(!everything.complete(), "blaming a red herring too is not a complete diagnosis");
    }

    #[test]
    fn unknown_ids_are_reported() {
        assert_eq!(grade(&key(), &ids(&["full", "nope", "also"])), Err(UnknownIds(ids(&["nope", "also"]))));
    }

    #[test]
    fn the_missed_causes_are_not_serialised() {
        let g = grade(&key(), &ids(&["full"])).unwrap();
        let text = serde_json::to_string(&g).unwrap();
        assert!(!text.contains("policy") && !text.contains("quota"), "{text}");
        assert!(text.contains("full"), "{text}");
    }

    #[test]
    fn the_order_is_stable_per_seed_and_mixes_causes_with_herrings() {
        let k = key();
        let a = candidates(&k, session_seed("2024-05-01T10:00:00Z", "etcd-quota"));
        let b = candidates(&k, session_seed("2024-05-01T10:00:00Z", "etcd-quota"));
        assert_eq!(a, b, "a re-run shows the same order");
        let mut sorted: Vec<String> = a.iter().map(|c| c.id.clone()).collect();
        sorted.sort();
        assert_eq!(sorted, ids(&["disk", "dns", "full", "policy", "quota"]), "every candidate once");
        // Some seed gives another order, and not every order lists the causes first.
        let orders: std::collections::HashSet<Vec<String>> = (0..50)
            .map(|i| candidates(&k, session_seed(&format!("t{i}"), "x")).into_iter().map(|c| c.id).collect())
            .collect();
        assert!(orders.len() > 10, "only {} orders in 50 seeds", orders.len());
        assert!(orders.iter().any(|o| o[0] == "disk" || o[0] == "dns"));
    }

    #[test]
    fn picks_parse_numbers_commas_and_reject_the_rest() {
        assert_eq!(parse_picks("1 3", 5), Ok(vec![0, 2]));
        assert_eq!(parse_picks(" 3,1  3 ", 5), Ok(vec![2, 0]));
        assert_eq!(parse_picks("5", 5), Ok(vec![4]));
        assert!(parse_picks("6", 5).unwrap_err().contains("1–5"));
        assert!(parse_picks("0", 5).is_err());
        assert!(parse_picks("two", 5).unwrap_err().contains("`two`"));
        assert!(parse_picks("  ", 5).is_err());
    }
}
