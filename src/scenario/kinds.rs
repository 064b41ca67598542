//! The built-in action kinds (setup, faults, solution) and check kinds, as typed payloads.
//!
//! A step or check is a YAML mapping with a few common keys (`id`, `description`, …) and exactly
//! one key that names its kind, Chainsaw-style:
//!
//! ```yaml
//! - id: shrink-quota
//!   staticPodFlag: { manifest: etcd, flag: --quota-backend-bytes, value: "16777216" }
//! ```
//!
//! The mapping is read by hand (no `#[serde(flatten)]`, no internally tagged enum), so every
//! error keeps its line and column and a misspelt kind is reported with the full list of kinds.
//! This module only describes; what a kind *does* lives in `fault/` and `check/`.

use super::duration::Duration;
use indexmap::IndexMap;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::Spanned;
use std::fmt;

/// Declares an enum of kinds, each holding its payload, with the glue every kinded map needs.
macro_rules! kinds {
    ($(#[$meta:meta])* $name:ident { $($key:literal => $variant:ident($payload:ty)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub enum $name { $($variant($payload)),+ }

        impl $name {
            /// The YAML key of every kind, in documentation order.
            pub const KINDS: &'static [&'static str] = &[$($key),+];

            /// The YAML key that names this kind.
            pub fn kind(&self) -> &'static str {
                match self { $(Self::$variant(_) => $key),+ }
            }

            /// Reads the payload for `key` if `key` names a kind of this enum.
            pub(crate) fn read_payload<'de, A: MapAccess<'de>>(
                key: &str,
                map: &mut A,
            ) -> Result<Option<Self>, A::Error> {
                Ok(match key {
                    $($key => Some(Self::$variant(map.next_value::<$payload>()?)),)+
                    _ => None,
                })
            }

            pub(crate) fn write_entry<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self { $(Self::$variant(p) => map.serialize_entry($key, p)),+ }
            }
        }
    };
}

kinds! {
    /// What to do to the cluster: the vocabulary of setup steps, faults and solutions.
    Action {
        "apply" => Apply(ApplyAction),
        "patch" => Patch(PatchAction),
        "delete" => Delete(DeleteAction),
        "label" => Label(LabelAction),
        "nodeExec" => NodeExec(NodeExecAction),
        "sysctl" => Sysctl(SysctlAction),
        "staticPodFlag" => StaticPodFlag(StaticPodFlagAction),
        "etcdFill" => EtcdFill(EtcdFillAction),
        "etcdctl" => Etcdctl(EtcdctlAction),
        "etcdRecover" => EtcdRecover(EtcdRecoverAction),
        "kubelet" => Kubelet(KubeletAction),
        "nodeFile" => NodeFile(NodeFileAction),
        "wait" => Wait(WaitAction),
    }
}

kinds! {
    /// What to look at: the vocabulary of checks.
    CheckSpec {
        "resource" => Resource(ResourceCheck),
        "probePod" => ProbePod(ProbePodCheck),
        "podExec" => PodExec(PodExecCheck),
        "nodeExec" => NodeExec(NodeExecCheck),
        "sysctl" => Sysctl(SysctlCheck),
        "etcd" => Etcd(EtcdCheck),
        "rollout" => Rollout(RolloutCheck),
        "events" => Events(EventsCheck),
        "audit" => Audit(AuditCheck),
        "apiWrite" => ApiWrite(ApiWriteCheck),
        "mirrorPods" => MirrorPods(MirrorPodsCheck),
        "all" => All(Vec<CheckSpec>),
        "any" => Any(Vec<CheckSpec>),
        "not" => Not(Box<CheckSpec>),
    }
}

// ---------------------------------------------------------------------------------------------
// Action payloads

/// A Kubernetes object named by its type and name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} {}/{}", self.api_version, self.kind, ns, self.name),
            None => write!(f, "{}/{} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// Create or update every object of a (multi-document) manifest; undo restores what was there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyAction {
    /// A tera template that renders to one or more YAML documents.
    pub manifest: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PatchType {
    #[default]
    Merge,
    Json,
    Strategic,
}

/// Patch one object; undo puts the original back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchAction {
    pub target: ObjectRef,
    #[serde(default, rename = "type")]
    pub patch_type: PatchType,
    /// YAML or JSON text (a template): a merge patch, a strategic merge patch or a JSON patch list.
    pub patch: String,
}

/// Delete one object; undo recreates it from the copy kept in the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteAction {
    pub target: ObjectRef,
    /// Succeed when the object is already gone (default: it must exist — a precondition).
    #[serde(default)]
    pub ignore_missing: bool,
    /// `false` when something else recreates the object (a mirror pod, a ReplicaSet's pod):
    /// undo then leaves it to its owner instead of creating a copy.
    #[serde(default = "default_true")]
    pub recreate_on_undo: bool,
}

/// Set (string) or remove (null) labels on one object, e.g. a namespace's pod-security labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelAction {
    pub target: ObjectRef,
    pub labels: IndexMap<String, Option<String>>,
}

/// Run an argument vector on nodes. `save` runs first and its output is kept per node, so that
/// `undo` can use it as `{{ saved }}`. Never handed to a shell by klab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeExecAction {
    #[serde(default = "default_all_nodes")]
    pub nodes: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Vec<String>>,
}

/// Set kernel parameters in the nodes' network namespace; undo restores the values read before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SysctlAction {
    #[serde(default = "default_all_nodes")]
    pub nodes: String,
    pub settings: IndexMap<String, String>,
}

/// Set or remove a flag of a static pod (`/etc/kubernetes/manifests/<manifest>.yaml`) and wait
/// until the kubelet has restarted the pod with it. Undo restores the file byte for byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticPodFlagAction {
    #[serde(default = "default_control_plane")]
    pub node: String,
    /// The manifest's base name: `etcd`, `kube-apiserver`, `kube-controller-manager`, …
    pub manifest: String,
    /// The container whose command carries the flag (default: the manifest's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The flag with its dashes, e.g. `--quota-backend-bytes`.
    pub flag: String,
    /// The value to set; absent with `remove: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default)]
    pub remove: bool,
    #[serde(default = "default_restart_timeout")]
    pub timeout: Duration,
}

/// Write filler keys into etcd until it raises the NOSPACE alarm. Undo deletes the filler,
/// compacts, defragments and disarms the alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdFillAction {
    #[serde(default = "default_control_plane")]
    pub node: String,
    /// Bytes per value (≤ 1 MiB, etcd's request limit is 1.5 MiB).
    #[serde(default = "default_fill_value_bytes")]
    pub value_bytes: u32,
    /// Give up (and fail the fault) after this many writes without the alarm.
    #[serde(default = "default_fill_max_writes")]
    pub max_writes: u32,
    #[serde(default = "default_fill_prefix")]
    pub prefix: String,
}

/// Run `etcdctl` with the member's certificates (a solution step, e.g. `alarm disarm`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdctlAction {
    #[serde(default = "default_control_plane")]
    pub node: String,
    pub args: Vec<String>,
}

/// What an operator does after NOSPACE: delete what filled etcd, compact to the current
/// revision, defragment, and disarm the alarm (each optional, in that order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdRecoverAction {
    #[serde(default = "default_control_plane")]
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_prefix: Option<String>,
    #[serde(default = "default_true")]
    pub compact: bool,
    #[serde(default = "default_true")]
    pub defrag: bool,
    #[serde(default = "default_true")]
    pub disarm: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ServiceState {
    Stopped,
    Running,
}

/// Stop or start the kubelet on nodes; undo returns it to the state it had.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletAction {
    pub nodes: String,
    pub state: ServiceState,
}

/// Write (or remove) a file on nodes; undo restores the original content or absence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeFileAction {
    #[serde(default = "default_all_nodes")]
    pub nodes: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Octal mode such as `0644` (a string, so YAML does not read it as a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default)]
    pub remove: bool,
}

/// Poll a check until it passes or the timeout ends (setup: wait for a rollout, say).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitAction {
    pub until: CheckSpec,
    #[serde(default = "default_wait_timeout")]
    pub timeout: Duration,
}

// ---------------------------------------------------------------------------------------------
// Check payloads

/// What a command's result must look like. Every given condition must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_matches: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_equals: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// Objects exist (or not) and partially match a tree, Chainsaw-style.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceCheck {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// `false`: passes when no object matches.
    #[serde(default = "default_true")]
    pub present: bool,
    /// A partial object: every field written must be present with that value; lists are matched
    /// by content (each expected item must match some item), not by position.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_tree: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountRange>,
}

/// A short-lived pod runs a command; the pod is always removed afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbePodCheck {
    pub image: String,
    pub command: Vec<String>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Pin the probe to a node (name or `control-plane`/`workers` selector's first node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default = "default_probe_timeout")]
    pub timeout: Duration,
}

/// Run a command in an existing pod (does not create a pod, so it cannot heal a fault).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodExecCheck {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub command: Vec<String>,
    /// Give the command the `<NAME>_SERVICE_HOST`/`_PORT` variables of the namespace's Services
    /// as they are now (what the kubelet gives a pod started now), through `env`. A pod's own
    /// variables are frozen when it starts, and a kubelet whose Service cache lags (after an
    /// apiserver restart, say) starts pods without them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service_env: bool,
    #[serde(default)]
    pub expect: Expect,
}

/// Run a command on nodes (through the node access, so it works with the apiserver down).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeExecCheck {
    #[serde(default = "default_all_nodes")]
    pub nodes: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SysctlCheck {
    #[serde(default = "default_all_nodes")]
    pub nodes: String,
    pub key: String,
    pub equals: String,
}

/// etcd's own view, read on the control-plane node, so it works while the apiserver fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdCheck {
    #[serde(default = "default_control_plane")]
    pub node: String,
    /// No alarm (NOSPACE, CORRUPT) is raised.
    #[serde(default)]
    pub no_alarms: bool,
    /// `endpoint health` succeeds.
    #[serde(default)]
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_db_bytes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutCheck {
    pub kind: WorkloadKind,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub name: String,
}

/// Events with a reason (default type Warning) since the fault was injected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub reason: String,
    #[serde(default = "default_warning", rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_contains: Option<String>,
    /// `false` (default): passes when there is no such event since the fault.
    #[serde(default)]
    pub present: bool,
}

/// "Did user U do verb V on resource R" in the apiserver's audit log since the fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// e.g. `403`, `4xx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default = "default_true")]
    pub present: bool,
}

/// A write through the apiserver succeeds (creates and deletes a ConfigMap).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiWriteCheck {
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

/// Every static pod manifest on the nodes has its mirror pod in the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorPodsCheck {
    #[serde(default = "default_control_plane")]
    pub nodes: String,
}

// ---------------------------------------------------------------------------------------------
// The kinded mappings: steps, scenario checks and nested check specs.

/// One step of setup, faults or solution.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub id: Spanned<String>,
    pub description: Option<String>,
    /// Only in this variant of the scenario (see `variants`).
    pub variant: Option<Spanned<String>>,
    pub action: Action,
}

/// How a scenario check is read by the grader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The user's view: is the cluster healthy again for the people who use it?
    #[default]
    User,
    /// A contributing cause is gone.
    Cause,
    /// Fires when a fix works but is the wrong fix (lowers the score, does not fail the drill).
    AntiPattern,
}

/// A check in a scenario: a reusable check (`use:` + `with:`) or an inline one.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckEntry {
    pub id: Spanned<String>,
    pub role: Role,
    pub description: String,
    pub variant: Option<Spanned<String>>,
    /// Keep polling until it passes, at most this long (self-healing and slow recoveries).
    pub within: Option<Duration>,
    pub timeout: Option<Duration>,
    pub with: IndexMap<String, serde_json::Value>,
    /// How the cause this check watches can heal without the trainee (cause checks only): read
    /// by the debrief to say who fixed it.
    pub self_heals: Option<SelfHeals>,
    pub body: CheckBody,
}

/// How a cause heals itself when the cluster does something normal, e.g. "a new pod on the node
/// turns forwarding back on (CNI bridge plugin)". Written as that sentence, or as a mapping with
/// the API call that sets the healing off, so the debrief can look for it in the audit log:
///
/// ```yaml
/// selfHeals:
///   how: a new pod on the node turns forwarding back on (CNI bridge plugin)
///   trigger: {verb: create, resource: pods}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfHeals {
    pub how: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<HealTrigger>,
}

/// An API call as the audit log records it: `verb` (create, update, patch, delete,
/// deletecollection) on `resource` (plural, lowercase, `pods` or `pods/eviction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealTrigger {
    pub verb: String,
    pub resource: String,
}

impl<'de> Deserialize<'de> for SelfHeals {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Full {
            how: String,
            #[serde(default)]
            trigger: Option<HealTrigger>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SelfHeals;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("how the cause heals itself: a sentence, or a mapping with `how` and `trigger`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SelfHeals, E> {
                Ok(SelfHeals { how: v.to_string(), trigger: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SelfHeals, A::Error> {
                let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SelfHeals { how: f.how, trigger: f.trigger })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CheckBody {
    Use(Spanned<String>),
    Inline(CheckSpec),
}

fn expected_keys(common: &[&str], kinds: &[&str]) -> String {
    let mut all: Vec<&str> = common.to_vec();
    all.extend_from_slice(kinds);
    all.join(", ")
}

const STEP_KEYS: &[&str] = &["id", "description", "variant"];
const CHECK_KEYS: &[&str] = &["id", "role", "description", "variant", "within", "timeout", "with", "selfHeals", "use"];

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step: a mapping with `id` and one action kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let (mut id, mut description, mut variant, mut action) = (None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => id = Some(map.next_value()?),
                        "description" => description = Some(map.next_value()?),
                        "variant" => variant = Some(map.next_value()?),
                        other => match Action::read_payload(other, &mut map)? {
                            Some(a) => {
                                if let Some(prev) = &action {
                                    return Err(de::Error::custom(format!(
                                        "a step has exactly one action kind, found `{}` and `{other}`: split them into two steps",
                                        Action::kind(prev)
                                    )));
                                }
                                action = Some(a);
                            }
                            None => {
                                return Err(de::Error::custom(format!(
                                    "unknown field `{other}`, expected one of {}",
                                    expected_keys(STEP_KEYS, Action::KINDS)
                                )));
                            }
                        },
                    }
                }
                let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                let action = action.ok_or_else(|| {
                    de::Error::custom(format!("step has no action kind: add one of {}", Action::KINDS.join(", ")))
                })?;
                Ok(Step { id, description, variant, action })
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id.value)?;
        if let Some(d) = &self.description {
            m.serialize_entry("description", d)?;
        }
        if let Some(v) = &self.variant {
            m.serialize_entry("variant", &v.value)?;
        }
        self.action.write_entry(&mut m)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for CheckEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CheckEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a check: a mapping with `id`, `description` and `use:` or one check kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckEntry, A::Error> {
                let mut id = None;
                let mut role = Role::default();
                let mut description = None;
                let mut variant = None;
                let mut within = None;
                let mut timeout = None;
                let mut with = IndexMap::new();
                let mut self_heals = None;
                let mut body: Option<CheckBody> = None;
                let set_body = |b: CheckBody, body: &mut Option<CheckBody>| -> Result<(), A::Error> {
                    if body.is_some() {
                        return Err(de::Error::custom(
                            "a check has exactly one of `use:` or a check kind; use `all:` to combine several",
                        ));
                    }
                    *body = Some(b);
                    Ok(())
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => id = Some(map.next_value()?),
                        "role" => role = map.next_value()?,
                        "description" => description = Some(map.next_value()?),
                        "variant" => variant = Some(map.next_value()?),
                        "within" => within = Some(map.next_value()?),
                        "timeout" => timeout = Some(map.next_value()?),
                        "with" => with = map.next_value()?,
                        "selfHeals" => self_heals = Some(map.next_value()?),
                        "use" => set_body(CheckBody::Use(map.next_value()?), &mut body)?,
                        other => match CheckSpec::read_payload(other, &mut map)? {
                            Some(spec) => set_body(CheckBody::Inline(spec), &mut body)?,
                            None => {
                                return Err(de::Error::custom(format!(
                                    "unknown field `{other}`, expected one of {}",
                                    expected_keys(CHECK_KEYS, CheckSpec::KINDS)
                                )));
                            }
                        },
                    }
                }
                let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                let description = description.ok_or_else(|| {
                    de::Error::custom("missing field `description`: say in one line what this check shows the trainee")
                })?;
                let body = body.ok_or_else(|| {
                    de::Error::custom(format!(
                        "check has neither `use:` nor a check kind: add `use: <check id>` or one of {}",
                        CheckSpec::KINDS.join(", ")
                    ))
                })?;
                Ok(CheckEntry { id, role, description, variant, within, timeout, with, self_heals, body })
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for CheckEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id.value)?;
        m.serialize_entry("role", &self.role)?;
        m.serialize_entry("description", &self.description)?;
        if let Some(v) = &self.variant {
            m.serialize_entry("variant", &v.value)?;
        }
        if let Some(w) = &self.within {
            m.serialize_entry("within", w)?;
        }
        if let Some(t) = &self.timeout {
            m.serialize_entry("timeout", t)?;
        }
        if !self.with.is_empty() {
            m.serialize_entry("with", &self.with)?;
        }
        if let Some(h) = &self.self_heals {
            m.serialize_entry("selfHeals", h)?;
        }
        match &self.body {
            CheckBody::Use(id) => m.serialize_entry("use", &id.value)?,
            CheckBody::Inline(spec) => spec.write_entry(&mut m)?,
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for CheckSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CheckSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a check: a mapping with exactly one check kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckSpec, A::Error> {
                let mut spec = None;
                while let Some(key) = map.next_key::<String>()? {
                    match CheckSpec::read_payload(&key, &mut map)? {
                        Some(s) if spec.is_none() => spec = Some(s),
                        Some(_) => {
                            return Err(de::Error::custom(
                                "a check has exactly one check kind; use `all:` to combine several",
                            ));
                        }
                        None => {
                            return Err(de::Error::custom(format!(
                                "unknown check kind `{key}`, expected one of {}",
                                CheckSpec::KINDS.join(", ")
                            )));
                        }
                    }
                }
                spec.ok_or_else(|| {
                    de::Error::custom(format!("empty check: add one of {}", CheckSpec::KINDS.join(", ")))
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for CheckSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        self.write_entry(&mut m)?;
        m.end()
    }
}

fn default_all_nodes() -> String {
    "all".into()
}
fn default_control_plane() -> String {
    "control-plane".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_true() -> bool {
    true
}
fn default_warning() -> String {
    "Warning".into()
}
fn default_restart_timeout() -> Duration {
    Duration::from_secs(180)
}
fn default_wait_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_fill_value_bytes() -> u32 {
    900_000
}
fn default_fill_max_writes() -> u32 {
    400
}
fn default_fill_prefix() -> String {
    "/klab/filler/".into()
}
