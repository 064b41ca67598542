//! Who fixed a cause: the trainee, the cluster healing itself, `klab solve` — or nobody can tell.
//!
//! For a cause check that passed for the first time, the window is from the last run in which it
//! failed (or from the injection) to that first pass. In that window the apiserver's audit log
//! shows the API writes: a non-system user's are the trainee's (klab's own calls, user agent
//! `klab/…`, and its probe objects left out), a `system:` user's are the cluster's. What the audit log cannot show are changes made on
//! the nodes themselves (`docker exec … sysctl -w`), so the answer is only as strong as the
//! evidence:
//!
//! - **fixed by `klab solve`** — the reference solution ran in the window;
//! - **healed by the cluster** — the scenario says how the cause heals itself (`selfHeals`) and
//!   the call that sets it off was seen in the window; or the check looks only at API objects and
//!   the trainee wrote nothing in the window;
//! - **fixed by you** — the trainee made API writes in the window (listed as evidence);
//! - **can't tell** — no audit log, or no API write of the trainee's while the fix could have
//!   been made on a node.
//!
//! Pure: the audit log's bytes and the facts in, an [`Attribution`] out.

use crate::audit::Event;
use crate::audit::event::Stage;
use crate::audit::timeline::WRITE_VERBS;
use crate::scenario::kinds::{CheckSpec, SelfHeals};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FixedBy {
    You,
    Cluster,
    Solve,
    CantTell,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    pub by: FixedBy,
    /// One line: "fixed by you", "healed by the cluster (…)", "can't tell".
    pub verdict: String,
    /// Why klab says so.
    pub why: String,
    /// The calls it rests on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// One successful write through the apiserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub at: Timestamp,
    pub user: String,
    pub verb: String,
    /// `pods`, or `pods/eviction` with its subresource.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub user_agent: String,
}

impl Write {
    /// Written by the cluster's own components (controllers, kubelets, service accounts).
    pub fn is_system(&self) -> bool {
        self.user.starts_with("system:")
    }

    /// klab's own calls: its user agent (`klab/<version>`), or its probe objects (the probe
    /// pods and write-probe ConfigMaps of `klab check`, for logs from before the user agent).
    pub fn is_klab(&self) -> bool {
        self.user_agent.starts_with("klab/")
            || self.name.starts_with("klab-probe-")
            || self.name.starts_with("klab-write-probe-")
    }

    pub fn describe(&self) -> String {
        let obj =
            if self.namespace.is_empty() { self.name.clone() } else { format!("{}/{}", self.namespace, self.name) };
        format!("{} {} {} {} {obj}", self.at.strftime("%H:%M:%S"), self.user, self.verb, self.resource)
    }
}

/// Calls that carry no change of state although their verb is `create`.
fn changes_state(resource: &str, subresource: &str) -> bool {
    !matches!(subresource, "exec" | "attach" | "portforward" | "proxy" | "log" | "token")
        && !resource.ends_with("reviews")
        && !matches!(resource, "events" | "leases")
}

/// The successful state-changing calls of an audit log received in `(from, to]`, in log order.
/// Lines that are not audit events are skipped.
pub fn writes_in(log: &[u8], from: Timestamp, to: Timestamp) -> Vec<Write> {
    let mut out = Vec::new();
    for line in log.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(e) = Event::from_json(line) else { continue };
        if matches!(e.stage, Stage::RequestReceived | Stage::ResponseStarted) {
            continue;
        }
        if !WRITE_VERBS.contains(&e.verb.as_str()) || e.code().is_some_and(|c| c >= 400) {
            continue;
        }
        let o = e.object_ref.clone().unwrap_or_default();
        if !changes_state(&o.resource, &o.subresource) {
            continue;
        }
        let Some(at) = e.received() else { continue };
        if at <= from || at > to {
            continue;
        }
        out.push(Write {
            at,
            user: e.user.username.clone(),
            verb: e.verb.clone(),
            resource: if o.subresource.is_empty() { o.resource } else { format!("{}/{}", o.resource, o.subresource) },
            namespace: o.namespace,
            name: o.name,
            user_agent: e.user_agent.clone(),
        });
    }
    out
}

/// Whether a check looks only at API objects' own fields (no status, no node, no pod): then the
/// state it sees can only change through the apiserver, so the audit log sees every change.
pub fn observes_only_api_objects(spec: &CheckSpec) -> bool {
    match spec {
        CheckSpec::Resource(r) => r.match_tree.as_ref().is_none_or(|t| t.get("status").is_none()),
        CheckSpec::All(list) | CheckSpec::Any(list) => list.iter().all(observes_only_api_objects),
        CheckSpec::Not(inner) => observes_only_api_objects(inner),
        _ => false,
    }
}

/// The facts about one cause check's first pass.
pub struct Case<'a> {
    /// The last failing run before the first pass, or the injection.
    pub from: Timestamp,
    /// The run in which it passed first.
    pub to: Timestamp,
    pub self_heals: Option<&'a SelfHeals>,
    pub api_only: bool,
    /// When `klab solve` started applying the reference solution, if it did.
    pub solve_at: Option<Timestamp>,
    /// The window's writes (see [`writes_in`]), or why the audit log could not be read.
    pub writes: Result<Vec<Write>, String>,
}

const SHOWN: usize = 5;

fn listed(ws: &[&Write]) -> Vec<String> {
    let mut v: Vec<String> = ws.iter().take(SHOWN).map(|w| w.describe()).collect();
    if ws.len() > SHOWN {
        v.push(format!("… and {} more", ws.len() - SHOWN));
    }
    v
}

pub fn attribute(c: &Case) -> Attribution {
    let window = format!("between {} and {}", c.from.strftime("%H:%M:%S"), c.to.strftime("%H:%M:%S"));
    let heals_note = c.self_heals.map(|h| format!("; this cause can also heal by itself: {}", h.how.trim()));
    if let Some(t) = c.solve_at
        && t > c.from
        && t <= c.to
    {
        return Attribution {
            by: FixedBy::Solve,
            verdict: "fixed by `klab solve`".into(),
            why: format!("the reference solution was applied at {} {window}", t.strftime("%H:%M:%S")),
            evidence: vec![],
        };
    }
    let writes = match &c.writes {
        Ok(w) => w,
        Err(reason) => {
            return Attribution {
                by: FixedBy::CantTell,
                verdict: "can't tell".into(),
                why: format!("the audit log could not be read ({reason}){}", heals_note.unwrap_or_default()),
                evidence: vec![],
            };
        }
    };
    let yours: Vec<&Write> = writes.iter().filter(|w| !w.is_system() && !w.is_klab()).collect();
    let cluster: Vec<&Write> = writes.iter().filter(|w| w.is_system()).collect();

    // The scenario says how it heals itself, and the call that sets it off was made.
    if let Some(h) = c.self_heals
        && let Some(t) = &h.trigger
    {
        let hits: Vec<&Write> =
            writes.iter().filter(|w| !w.is_klab() && w.verb == t.verb && w.resource == t.resource).collect();
        if !hits.is_empty() {
            let by_you: Vec<&&Write> = hits.iter().filter(|w| !w.is_system()).collect();
            let mut why = match by_you.first() {
                Some(w) if by_you.len() == hits.len() => {
                    format!("set off by your own `{} {} {}` {window}, not by a lasting fix", w.verb, w.resource, w.name)
                }
                _ => format!("the cluster made the call that sets it off ({} {}) {window}", t.verb, t.resource),
            };
            let mut evidence = listed(&hits);
            let other_yours: Vec<&Write> = yours.iter().filter(|w| !hits.contains(w)).copied().collect();
            if !other_yours.is_empty() {
                why.push_str(&format!("; you also made {} other API write(s)", other_yours.len()));
                evidence.extend(listed(&other_yours));
            }
            if !c.api_only {
                why.push_str("; changes made on the nodes themselves leave no trace in the audit log");
            }
            return Attribution {
                by: FixedBy::Cluster,
                verdict: format!("healed by the cluster ({})", h.how.trim()),
                why,
                evidence,
            };
        }
    }
    if !yours.is_empty() {
        return Attribution {
            by: FixedBy::You,
            verdict: "fixed by you".into(),
            why: format!("you made {} API write(s) {window}{}", yours.len(), heals_note.unwrap_or_default()),
            evidence: listed(&yours),
        };
    }
    if c.api_only {
        let how = c.self_heals.map(|h| format!(" ({})", h.how.trim())).unwrap_or_default();
        return Attribution {
            by: FixedBy::Cluster,
            verdict: format!("healed by the cluster{how}"),
            why: format!(
                "the check looks only at API objects and you made no API write {window}{}",
                if cluster.is_empty() { String::new() } else { format!("; the cluster made {}", cluster.len()) }
            ),
            evidence: listed(&cluster),
        };
    }
    Attribution {
        by: FixedBy::CantTell,
        verdict: "can't tell".into(),
        why: format!(
            "you made no API write {window}, and changes made on the nodes themselves (docker exec) leave no trace in the audit log{}",
            heals_note.unwrap_or_default()
        ),
        evidence: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::kinds::HealTrigger;

    fn ts(s: &str) -> Timestamp {
        format!("2024-05-01T{s}Z").parse().unwrap()
    }

    /// An audit line in namespace `shop`; `resource` may carry a subresource (`pods/exec`).
    fn line(time: &str, user: &str, verb: &str, resource: &str, name: &str, code: u16) -> String {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": format!("{time}{name}"),
            "stage": "ResponseComplete", "verb": verb, "user": {"username": user},
            "objectRef": {"resource": resource, "subresource": sub, "namespace": "shop", "name": name},
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": format!("2024-05-01T{time}Z"), "stageTimestamp": format!("2024-05-01T{time}Z"),
        })
        .to_string()
    }

    fn log() -> String {
        [
            line("10:00:30.000000", "kubernetes-admin", "create", "configmaps", "before-window", 201),
            line("10:01:00.000000", "kubernetes-admin", "delete", "networkpolicies", "deny-wip", 200),
            line("10:01:05.000000", "kubernetes-admin", "create", "pods/exec", "toolbox", 101),
            line("10:01:06.000000", "kubernetes-admin", "create", "pods", "klab-probe-0a1b2c3d", 201),
            line("10:01:07.000000", "kubernetes-admin", "patch", "deployments", "web", 403),
            line("10:01:08.000000", "kubernetes-admin", "get", "pods", "web", 200),
            line(
                "10:01:09.000000",
                "system:serviceaccount:kube-system:replicaset-controller",
                "create",
                "pods",
                "web-7d4b9",
                201,
            ),
            line("10:01:10.000000", "system:node:klab-control-plane", "create", "events", "web.1", 201),
            line("10:01:11.000000", "kubernetes-admin", "create", "selfsubjectaccessreviews", "", 201),
            {
                let mut v: serde_json::Value = serde_json::from_str(&line(
                    "10:01:12.000000",
                    "kubernetes-admin",
                    "delete",
                    "configmaps",
                    "klab-solution-step",
                    200,
                ))
                .unwrap();
                v["userAgent"] = serde_json::json!("klab/0.1.0");
                v.to_string()
            },
            "not json at all".into(),
            line("10:03:00.000000", "kubernetes-admin", "delete", "configmaps", "after-window", 200),
        ]
        .join("\n")
    }

    #[test]
    fn writes_are_successful_state_changes_inside_the_window() {
        let w = writes_in(log().as_bytes(), ts("10:00:30"), ts("10:02:00"));
        let got: Vec<String> = w.iter().map(|w| format!("{} {} {}", w.verb, w.resource, w.name)).collect();
        assert_eq!(
            got,
            vec![
                "delete networkpolicies deny-wip",
                "create pods klab-probe-0a1b2c3d",
                "create pods web-7d4b9",
                "delete configmaps klab-solution-step"
            ],
            "the start is exclusive; exec, refused, reads, events, reviews and later calls are left out"
        );
        assert!(w[2].is_system() && !w[0].is_system() && w[1].is_klab());
        assert!(w[3].is_klab() && !w[3].is_system(), "klab's own user agent: {:?}", w[3]);
        assert_eq!(w[0].describe(), "10:01:00 kubernetes-admin delete networkpolicies shop/deny-wip");
    }

    fn case(writes: Result<Vec<Write>, String>) -> Case<'static> {
        Case { from: ts("10:00:30"), to: ts("10:02:00"), self_heals: None, api_only: false, solve_at: None, writes }
    }

    fn heals(trigger: bool) -> &'static SelfHeals {
        Box::leak(Box::new(SelfHeals {
            how: "a new pod on the node turns forwarding back on".into(),
            trigger: trigger.then(|| HealTrigger { verb: "create".into(), resource: "pods".into() }),
        }))
    }

    fn w(time: &str, user: &str, verb: &str, resource: &str, name: &str) -> Write {
        Write {
            at: ts(time),
            user: user.into(),
            verb: verb.into(),
            resource: resource.into(),
            namespace: "shop".into(),
            name: name.into(),
            user_agent: "kubectl/v1.20.2 (linux/amd64) kubernetes/faecb19".into(),
        }
    }

    #[test]
    fn the_trainees_writes_make_it_theirs() {
        let a = attribute(&case(Ok(writes_in(log().as_bytes(), ts("10:00:30"), ts("10:02:00")))));
        assert_eq!(a.by, FixedBy::You, "{a:?}");
        assert_eq!(a.verdict, "fixed by you");
        assert!(
            a.why.contains("1 API write(s) between 10:00:30 and 10:02:00"),
            "probe pods and klab/ calls are klab's: {a:?}"
        );
        assert_eq!(a.evidence, vec!["10:01:00 kubernetes-admin delete networkpolicies shop/deny-wip"]);
    }

    #[test]
    fn a_declared_self_heal_whose_trigger_the_cluster_made_is_the_clusters() {
        let mut c = case(Ok(vec![w(
            "10:01:09",
            "system:serviceaccount:kube-system:replicaset-controller",
            "create",
            "pods",
            "web-7d4b9",
        )]));
        c.self_heals = Some(heals(true));
        let a = attribute(&c);
        assert_eq!(a.by, FixedBy::Cluster, "{a:?}");
        assert_eq!(a.verdict, "healed by the cluster (a new pod on the node turns forwarding back on)");
        assert!(
            a.why.contains("the cluster made the call that sets it off (create pods)") && a.why.contains("no trace"),
            "{a:?}"
        );
        assert!(a.evidence[0].contains("replicaset-controller create pods shop/web-7d4b9"), "{a:?}");
    }

    #[test]
    fn a_self_heal_set_off_by_the_trainees_own_pod_says_so() {
        let mut c = case(Ok(vec![
            w("10:01:00", "kubernetes-admin", "create", "pods", "debug"),
            w("10:01:01", "kubernetes-admin", "patch", "configmaps", "app"),
        ]));
        c.self_heals = Some(heals(true));
        let a = attribute(&c);
        assert_eq!(a.by, FixedBy::Cluster, "{a:?}");
        assert!(a.why.contains("set off by your own `create pods debug`"), "{a:?}");
        assert!(a.why.contains("1 other API write"), "{a:?}");
        assert_eq!(a.evidence.len(), 2);
    }

    #[test]
    fn no_writes_on_a_node_level_check_cannot_be_told_apart() {
        let a = attribute(&case(Ok(vec![])));
        assert_eq!((a.by, a.verdict.as_str()), (FixedBy::CantTell, "can't tell"), "{a:?}");
        assert!(a.why.contains("leave no trace"), "{a:?}");
        let mut c = case(Ok(vec![]));
        c.self_heals = Some(heals(false));
        let a = attribute(&c);
        assert_eq!(a.by, FixedBy::CantTell, "a self-heal without its trigger seen is no evidence: {a:?}");
        assert!(a.why.contains("can also heal by itself: a new pod"), "{a:?}");
    }

    #[test]
    fn no_writes_on_an_api_only_check_is_the_cluster() {
        let mut c = case(Ok(vec![w(
            "10:01:09",
            "system:serviceaccount:kube-system:namespace-controller",
            "delete",
            "networkpolicies",
            "deny-wip",
        )]));
        c.api_only = true;
        let a = attribute(&c);
        assert_eq!((a.by, a.verdict.as_str()), (FixedBy::Cluster, "healed by the cluster"), "{a:?}");
        assert!(a.evidence[0].contains("namespace-controller"), "{a:?}");
    }

    #[test]
    fn an_unreadable_audit_log_cannot_tell_and_says_why() {
        let a = attribute(&case(Err("no audit log at /var/log/x on klab-control-plane".into())));
        assert_eq!(a.by, FixedBy::CantTell);
        assert!(a.why.contains("no audit log at /var/log/x"), "{a:?}");
    }

    #[test]
    fn klab_solve_in_the_window_wins_outside_it_does_not() {
        let mut c = case(Ok(vec![w("10:01:00", "kubernetes-admin", "delete", "networkpolicies", "deny-wip")]));
        c.solve_at = Some(ts("10:01:30"));
        assert_eq!(attribute(&c).by, FixedBy::Solve);
        c.solve_at = Some(ts("10:00:10"));
        assert_eq!(attribute(&c).by, FixedBy::You, "a solve before the window is not this fix");
    }

    #[test]
    fn only_object_fields_make_a_check_api_only() {
        let spec = |v: serde_json::Value| serde_json::from_value::<CheckSpec>(v).unwrap();
        let np = serde_json::json!({"resource": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "name": "x", "present": false}});
        assert!(observes_only_api_objects(&spec(np.clone())));
        assert!(observes_only_api_objects(&spec(serde_json::json!({"any": [np.clone(), {"not": np}]}))));
        assert!(!observes_only_api_objects(&spec(
            serde_json::json!({"resource": {"apiVersion": "v1", "kind": "Pod", "name": "x", "match": {"status": {"phase": "Running"}}}})
        )));
        assert!(!observes_only_api_objects(&spec(
            serde_json::json!({"sysctl": {"key": "net.ipv4.ip_forward", "equals": "1"}})
        )));
        assert!(!observes_only_api_objects(&spec(serde_json::json!({"all": [{"apiWrite": {}}]}))));
    }
}
