//! The drill's score: 100 points, minus what the trainee spent — time over the limit, hints,
//! wrong diagnoses, failed check runs, anti-patterns — and 0 for giving up. Pure: the session
//! and the scenario in, a score with its breakdown out. The rules, with their numbers, are in
//! docs/scoring.md; the constants below are the same numbers.

use super::diagnosis::{self, Grade};
use crate::scenario::kinds::Role;
use crate::scenario::model::Scenario;
use crate::session::record::{CheckAttempt, Session};
use serde::Serialize;

pub const START: u32 = 100;
/// Per started minute over the time limit…
pub const OVERTIME_PER_MINUTE: u32 = 2;
/// …at most this much.
pub const OVERTIME_CAP: u32 = 30;
/// Each red herring named in a diagnosis attempt.
pub const RED_HERRING: u32 = 5;
/// Each diagnosis attempt that missed at least one cause.
pub const MISSED_ATTEMPT: u32 = 3;
/// Causes the last diagnosis did not name cost this share of these points (partial credit per
/// cause); no diagnosis at all costs all of them.
pub const UNFOUND_CAUSES: u32 = 20;
/// Each `klab check` run that did not find the cluster fixed…
pub const FAILED_CHECK: u32 = 1;
/// …at most this much.
pub const FAILED_CHECK_CAP: u32 = 10;
/// Each anti-pattern check failing in the last check run.
pub const ANTI_PATTERN: u32 = 10;

/// The points each rule takes: klab's defaults are the constants above; a game-day roster may
/// set its own (`scoring:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub overtime_per_minute: u32,
    pub overtime_cap: u32,
    pub red_herring: u32,
    pub missed_attempt: u32,
    pub unfound_causes: u32,
    pub failed_check: u32,
    pub failed_check_cap: u32,
    pub anti_pattern: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            overtime_per_minute: OVERTIME_PER_MINUTE,
            overtime_cap: OVERTIME_CAP,
            red_herring: RED_HERRING,
            missed_attempt: MISSED_ATTEMPT,
            unfound_causes: UNFOUND_CAUSES,
            failed_check: FAILED_CHECK,
            failed_check_cap: FAILED_CHECK_CAP,
            anti_pattern: ANTI_PATTERN,
        }
    }
}

/// What the score is computed from (all of it already in the session and the scenario).
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub time_limit_secs: u64,
    /// From injection to the fix (or to now while not fixed); `None` before injection finished.
    pub elapsed_secs: Option<u64>,
    pub hint_costs: Vec<u32>,
    /// The grade of every diagnosis attempt, in order.
    pub diagnoses: Vec<Grade>,
    pub checks: Vec<CheckAttempt>,
    pub fixed: bool,
    pub gave_up: bool,
}

/// One rule's share of the score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    pub rule: &'static str,
    /// Points taken away (0 when the rule cost nothing).
    pub minus: u32,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Score {
    pub points: u32,
    pub max: u32,
    /// Not final yet: the cluster is not fixed and the trainee has not given up.
    pub provisional: bool,
    pub items: Vec<Item>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn score(i: &Input) -> Score {
    score_with(i, &Rules::default())
}

pub fn score_with(i: &Input, r: &Rules) -> Score {
    if i.gave_up {
        return Score {
            points: 0,
            max: START,
            provisional: false,
            items: vec![Item {
                rule: "gave up",
                minus: START,
                detail: "`klab solve` applied the reference solution".into(),
            }],
        };
    }
    let mut items = Vec::new();

    // Time over the limit, per started minute, capped.
    let (minus, detail) = match i.elapsed_secs {
        None => (0, "the clock has not started".to_string()),
        Some(e) if e <= i.time_limit_secs => {
            (0, format!("{} of {} min", e.div_ceil(60), i.time_limit_secs.div_ceil(60)))
        }
        Some(e) => {
            let over_min = (e - i.time_limit_secs).div_ceil(60);
            let m = (over_min.saturating_mul(u64::from(r.overtime_per_minute))).min(u64::from(r.overtime_cap)) as u32;
            (m, format!("{over_min} min over the {} min limit", i.time_limit_secs.div_ceil(60)))
        }
    };
    items.push(Item { rule: "time", minus, detail });

    // Hints, at their own costs.
    let hint_minus: u32 = i.hint_costs.iter().sum();
    let detail = if i.hint_costs.is_empty() {
        "none taken".to_string()
    } else {
        format!(
            "{} taken ({})",
            i.hint_costs.len(),
            i.hint_costs.iter().map(u32::to_string).collect::<Vec<_>>().join(" + ")
        )
    };
    items.push(Item { rule: "hints", minus: hint_minus, detail });

    // Wrong diagnoses: every red herring blamed, every attempt that missed causes.
    let herrings: usize = i.diagnoses.iter().map(|g| g.wrongly_blamed.len()).sum();
    let missing_attempts = i.diagnoses.iter().filter(|g| !g.missed.is_empty()).count();
    items.push(Item {
        rule: "red herrings blamed",
        minus: herrings as u32 * r.red_herring,
        detail: plural(herrings, "time", "times"),
    });
    items.push(Item {
        rule: "incomplete diagnoses",
        minus: missing_attempts as u32 * r.missed_attempt,
        detail: format!("{} that missed a cause", plural(missing_attempts, "attempt", "attempts")),
    });
    // Partial credit per cause, from the last attempt.
    let (minus, detail) = match i.diagnoses.last() {
        None => (r.unfound_causes, "no diagnosis yet (`klab diagnose`)".to_string()),
        Some(g) if g.causes_total == 0 => (0, "the drill has no causes to find".to_string()),
        Some(g) => {
            let missed = g.causes_total - g.found.len();
            let m = (r.unfound_causes as usize * missed + g.causes_total / 2) / g.causes_total;
            (m as u32, format!("{} of {} causes found in the last diagnosis", g.found.len(), g.causes_total))
        }
    };
    items.push(Item { rule: "causes not found", minus, detail });

    // Failed check runs, capped (a game day's final run is the facilitator's, not the team's).
    let failed = i.checks.iter().filter(|a| !a.passed && !a.final_run).count();
    items.push(Item {
        rule: "failed checks",
        minus: (failed as u32).saturating_mul(r.failed_check).min(r.failed_check_cap),
        detail: format!("{} not fixed", plural(failed, "`klab check` run", "`klab check` runs")),
    });

    // Anti-patterns in the last check run: lower the score, never fail the drill.
    let anti: Vec<&str> = i
        .checks
        .last()
        .map(|a| a.results.iter().filter(|r| r.role == Role::AntiPattern && !r.passed).map(|r| r.id.as_str()).collect())
        .unwrap_or_default();
    items.push(Item {
        rule: "anti-patterns",
        minus: anti.len() as u32 * r.anti_pattern,
        detail: if anti.is_empty() { "none in the last check".into() } else { anti.join(", ") },
    });

    let spent: u32 = items.iter().map(|x| x.minus).sum();
    Score { points: START.saturating_sub(spent), max: START, provisional: !i.fixed, items }
}

/// The score input of a session: elapsed time from injection to the fix (or `now`), the grade
/// of every diagnosis attempt (ids the scenario no longer knows are ignored).
pub fn input_of(s: &Session, sc: &Scenario, now: jiff::Timestamp) -> Input {
    let ts = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let elapsed_secs = ts(&s.injected_at).map(|start| {
        let end = ts(&s.fixed_at).unwrap_or(now);
        end.as_second().saturating_sub(start.as_second()).max(0) as u64
    });
    let diagnoses = s
        .diagnoses
        .iter()
        .filter_map(|d| {
            let known: Vec<String> = d
                .causes
                .iter()
                .filter(|id| {
                    sc.diagnosis.causes.iter().any(|c| &c.id.value == *id)
                        || sc.diagnosis.red_herrings.iter().any(|r| &r.id.value == *id)
                })
                .cloned()
                .collect();
            diagnosis::grade(&sc.diagnosis, &known).ok()
        })
        .collect();
    Input {
        time_limit_secs: sc.metadata.time_limit.as_secs(),
        elapsed_secs,
        hint_costs: s.hints_taken.iter().map(|h| h.cost).collect(),
        diagnoses,
        checks: s.check_attempts.clone(),
        fixed: s.fixed_at.is_some(),
        gave_up: s.gave_up,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::record::CheckOutcome;

    fn grade(found: usize, total: usize, herrings: usize) -> Grade {
        Grade {
            found: (0..found).map(|i| format!("c{i}")).collect(),
            missed: (found..total).map(|i| format!("c{i}")).collect(),
            wrongly_blamed: (0..herrings).map(|i| format!("h{i}")).collect(),
            causes_total: total,
        }
    }

    fn attempt(passed: bool, anti_failing: &[&str]) -> CheckAttempt {
        let mut results = vec![CheckOutcome {
            id: "user".into(),
            role: Role::User,
            passed,
            reason: String::new(),
            first_pass: false,
            attribution: None,
        }];
        for a in anti_failing {
            results.push(CheckOutcome {
                id: a.to_string(),
                role: Role::AntiPattern,
                passed: false,
                reason: String::new(),
                first_pass: false,
                attribution: None,
            });
        }
        CheckAttempt { at: "2024-05-01T10:00:00Z".into(), passed, final_run: false, results }
    }

    #[test]
    fn a_roster_s_rules_replace_the_defaults_and_the_final_run_is_not_a_failed_attempt() {
        let mut i = perfect();
        i.checks = vec![attempt(false, &[]), attempt(false, &[])];
        let mut last = attempt(false, &["kept-replicas"]);
        last.final_run = true;
        i.checks.push(last);
        let d = score(&i);
        assert_eq!(d.items.iter().find(|x| x.rule == "failed checks").map(|x| x.minus), Some(2));
        assert_eq!(d.items.iter().find(|x| x.rule == "anti-patterns").map(|x| x.minus), Some(ANTI_PATTERN));
        let r = Rules { failed_check: 4, anti_pattern: 1, ..Rules::default() };
        let s = score_with(&i, &r);
        assert_eq!(s.items.iter().find(|x| x.rule == "failed checks").map(|x| x.minus), Some(8));
        assert_eq!(s.points, START - 8 - 1);
    }

    /// A perfect run: in time, no hints, one complete diagnosis, one passing check.
    fn perfect() -> Input {
        Input {
            time_limit_secs: 1800,
            elapsed_secs: Some(600),
            hint_costs: vec![],
            diagnoses: vec![grade(2, 2, 0)],
            checks: vec![attempt(true, &[])],
            fixed: true,
            gave_up: false,
        }
    }

    fn minus(s: &Score, rule: &str) -> u32 {
        s.items.iter().find(|i| i.rule == rule).unwrap_or_else(|| panic!("no rule {rule}: {s:?}")).minus
    }

    #[test]
    fn a_perfect_run_scores_the_maximum_and_is_final() {
        let s = score(&perfect());
        assert_eq!((s.points, s.max, s.provisional), (100, 100, false), "{s:?}");
        assert!(s.items.iter().all(|i| i.minus == 0), "{s:?}");
    }

    #[test]
    fn time_counts_per_started_minute_over_the_limit_with_a_cap() {
        let at = |e: u64| {
            let mut i = perfect();
            i.elapsed_secs = Some(e);
            score(&i)
        };
        assert_eq!(minus(&at(1800), "time"), 0, "exactly the limit costs nothing");
        assert_eq!(minus(&at(1801), "time"), OVERTIME_PER_MINUTE, "one second over is a started minute");
        assert_eq!(minus(&at(1860), "time"), OVERTIME_PER_MINUTE);
        assert_eq!(minus(&at(1861), "time"), 2 * OVERTIME_PER_MINUTE);
        assert_eq!(minus(&at(1800 + 15 * 60), "time"), OVERTIME_CAP, "15 min over reaches the cap");
        assert_eq!(minus(&at(1800 + 600 * 60), "time"), OVERTIME_CAP, "never more than the cap");
        assert_eq!(at(1801).points, 100 - OVERTIME_PER_MINUTE);
        let mut not_started = perfect();
        not_started.elapsed_secs = None;
        assert_eq!(minus(&score(&not_started), "time"), 0);
    }

    #[test]
    fn hints_cost_what_the_scenario_says() {
        let mut i = perfect();
        i.hint_costs = vec![5, 10, 20];
        let s = score(&i);
        assert_eq!(minus(&s, "hints"), 35);
        assert_eq!(s.points, 65);
        assert!(s.items.iter().any(|x| x.detail.contains("5 + 10 + 20")), "{s:?}");
    }

    #[test]
    fn wrong_diagnoses_cost_per_red_herring_and_per_incomplete_attempt() {
        let mut i = perfect();
        i.diagnoses = vec![grade(1, 2, 2), grade(2, 2, 1), grade(2, 2, 0)];
        let s = score(&i);
        assert_eq!(minus(&s, "red herrings blamed"), 3 * RED_HERRING);
        assert_eq!(minus(&s, "incomplete diagnoses"), MISSED_ATTEMPT, "only the first attempt missed a cause");
        assert_eq!(minus(&s, "causes not found"), 0, "the last attempt found both");
        assert_eq!(s.points, 100 - 3 * RED_HERRING - MISSED_ATTEMPT);
    }

    #[test]
    fn causes_not_found_give_partial_credit_from_the_last_attempt() {
        let with = |g: Vec<Grade>| {
            let mut i = perfect();
            i.diagnoses = g;
            minus(&score(&i), "causes not found")
        };
        assert_eq!(with(vec![]), UNFOUND_CAUSES, "no diagnosis at all");
        assert_eq!(with(vec![grade(0, 3, 0)]), UNFOUND_CAUSES);
        assert_eq!(with(vec![grade(1, 3, 0)]), 13, "2 of 3 missed: 13.3 rounds to 13");
        assert_eq!(with(vec![grade(2, 3, 0)]), 7, "1 of 3 missed: 6.7 rounds to 7");
        assert_eq!(with(vec![grade(1, 2, 0)]), 10);
        assert_eq!(with(vec![grade(3, 3, 0), grade(1, 3, 0)]), 13, "the last attempt counts");
        assert_eq!(with(vec![grade(0, 0, 0)]), 0);
    }

    #[test]
    fn failed_check_runs_cost_a_point_each_up_to_the_cap() {
        let with = |failed: usize| {
            let mut i = perfect();
            i.checks = (0..failed).map(|_| attempt(false, &[])).chain([attempt(true, &[])]).collect();
            minus(&score(&i), "failed checks")
        };
        assert_eq!(with(0), 0);
        assert_eq!(with(1), FAILED_CHECK);
        assert_eq!(with(10), FAILED_CHECK_CAP);
        assert_eq!(with(11), FAILED_CHECK_CAP, "capped");
    }

    #[test]
    fn anti_patterns_of_the_last_run_lower_the_score_but_the_drill_stays_fixed() {
        let mut i = perfect();
        i.checks = vec![attempt(false, &["old-one"]), attempt(true, &["legit-policy-kept", "labels-kept"])];
        let s = score(&i);
        assert_eq!(minus(&s, "anti-patterns"), 2 * ANTI_PATTERN);
        assert!(!s.provisional);
        assert!(s.items.iter().any(|x| x.detail == "legit-policy-kept, labels-kept"), "{s:?}");
        i.checks = vec![attempt(true, &["old-one"]), attempt(true, &[])];
        assert_eq!(minus(&score(&i), "anti-patterns"), 0, "only the last run counts");
    }

    #[test]
    fn giving_up_scores_zero_whatever_else_happened() {
        let mut i = perfect();
        i.gave_up = true;
        let s = score(&i);
        assert_eq!((s.points, s.provisional), (0, false));
        assert_eq!(s.items.len(), 1);
    }

    #[test]
    fn the_score_never_goes_below_zero() {
        let i = Input {
            time_limit_secs: 60,
            elapsed_secs: Some(100 * 60),
            hint_costs: vec![40, 40],
            diagnoses: vec![grade(0, 3, 2); 4],
            checks: (0..30).map(|_| attempt(false, &["a", "b", "c"])).collect(),
            fixed: false,
            gave_up: false,
        };
        let s = score(&i);
        assert_eq!(s.points, 0, "{s:?}");
        assert!(s.provisional, "not fixed yet: the score so far");
        assert!(s.items.iter().map(|x| x.minus).sum::<u32>() > 100);
    }
}
