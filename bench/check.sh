#!/usr/bin/env bash
# Benchmark: `klab check` of a drill with 20 API-level checks against a real kube-apiserver
# (ci/apiserver/up: v1.20.2 + etcd 3.4 on loopback) next to a Killercoda-style verify script that
# checks the same 20 things with 20 `kubectl get … -o jsonpath` calls in sequence. Target: klab
# at least 25× faster. Measured with hyperfine; prints its summary and the ratio.
#
#   bash bench/check.sh                        # builds the release binary first (as root: up needs it)
#   KLAB_BIN=target/release/klab bash bench/check.sh
#
# It starts its own apiserver (state folder KLAB_APISERVER_STATE, default
# /run/klab-apiserver-bench-<pid>, so it never shares or stops anyone else's) and stops it at the
# end. The node side is the fake `docker`/`kind` of tests/support/bin: the checks are API-level.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
for tool in hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install $tool)" >&2; exit 3; }
done
# A plain kubectl of the server's version when the real-node cache has one (the kubectl on PATH
# may be a dispatcher that execs another binary); KUBECTL names another.
kubectl_bin="${KUBECTL:-${KLAB_REALNODE_CACHE:-/var/cache/klab-realnode}/current/bin/kubectl}"
[ -x "$kubectl_bin" ] || kubectl_bin="$(command -v kubectl)" || { echo "kubectl is missing" >&2; exit 3; }
kubectl() { "$kubectl_bin" "$@"; }
if [ -z "${KLAB_BIN:-}" ]; then
  cargo build --release --quiet --bin klab
  KLAB_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/klab"
fi
[ -x "$KLAB_BIN" ] || { echo "no klab binary at $KLAB_BIN" >&2; exit 3; }

work="$(mktemp -d)"
export KLAB_APISERVER_STATE="${KLAB_APISERVER_STATE:-/run/klab-apiserver-bench-$$}"
cleanup() {
  ci/apiserver/down || true
  rm -rf "$work"
}
trap cleanup EXIT

# A busy machine or a port taken between probing and binding: wait and retry.
env_lines=""
for attempt in 1 2 3 4 5; do
  if env_lines="$(ci/apiserver/up)"; then
    break
  fi
  echo "bench: ci/apiserver/up failed (attempt $attempt of 5); retrying in 30 s" >&2
  env_lines=""
  sleep 30
done
[ -n "$env_lines" ] || { echo "bench: no apiserver" >&2; exit 1; }
eval "$env_lines"

# --- a klab lab on the real apiserver: kubeconfig, marker, a kind-looking node, fake nodes ----
export KUBECONFIG="$work/kubeconfig"
cp "$KLAB_REAL_APISERVER_KUBECONFIG" "$KUBECONFIG"
kubectl config use-context kind-klab >/dev/null
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: klab-lab
  namespace: kube-system
  labels: {klab.dev/lab: "true"}
data: {lab: klab}
---
apiVersion: v1
kind: Node
metadata:
  name: klab-control-plane
  labels: {node-role.kubernetes.io/control-plane: ""}
spec:
  providerID: kind://docker/klab/klab-control-plane
EOF
docker_state="$work/docker"
mkdir -p "$docker_state/nodes/klab-control-plane/root/etc/kubernetes/manifests" "$work/state" "$work/catalog/scenarios"
echo '[{"name": "klab-control-plane", "role": "control-plane", "cluster": "klab"}]' >"$docker_state/nodes.json"
echo '{"net.ipv4.ip_forward": "1"}' >"$docker_state/nodes/klab-control-plane/sysctl.json"
echo klab >"$docker_state/clusters"
export KLAB_FAKE_DOCKER="$docker_state" KLAB_STATE_DIR="$work/state" KLAB_CATALOG="$work/catalog"
export PATH="$repo/tests/support/bin:$PATH"
unset KLAB_LAB

# --- the drill: 20 ConfigMaps, one harmless fault, 20 resource checks -------------------------
python3 - "$work/catalog/scenarios/bench-checks.yaml" <<'EOF'
import sys
n = 20
cms = "".join(
    f"        ---\n        apiVersion: v1\n        kind: ConfigMap\n        metadata: {{name: cm-{i}, namespace: bench}}\n        data: {{n: \"{i}\"}}\n"
    for i in range(n))
checks = "".join(
    f"  - id: cm-{i}\n    role: cause\n    description: cm-{i} holds n={i}\n"
    f"    resource: {{apiVersion: v1, kind: ConfigMap, namespace: bench, name: cm-{i}, match: {{data: {{n: \"{i}\"}}}}}}\n"
    for i in range(n))
open(sys.argv[1], "w").write(f"""apiVersion: klab.dev/v1
kind: Scenario
metadata: {{id: bench-checks, title: {n} API-level checks for the benchmark, difficulty: easy, timeLimit: 10m}}
story: A benchmark, not a drill.
setup:
  - id: objects
    apply:
      manifest: |
        apiVersion: v1
        kind: Namespace
        metadata: {{name: bench}}
{cms}faults:
  - id: mark
    label:
      target: {{apiVersion: v1, kind: ConfigMap, namespace: bench, name: cm-0}}
      labels: {{marked: "true"}}
checks:
{checks}diagnosis:
  causes: [{{id: marked, summary: A ConfigMap is marked., faults: [mark]}}]
  redHerrings: [{{id: nothing, summary: Nothing happened.}}]
solution:
  - id: unmark
    label:
      target: {{apiVersion: v1, kind: ConfigMap, namespace: bench, name: cm-0}}
      labels: {{marked: null}}
debrief: A benchmark.
""")
EOF
"$KLAB_BIN" --color never drill bench-checks >/dev/null 2>"$work/drill.log" || { cat "$work/drill.log" >&2; exit 1; }

# --- the Killercoda-style verify script: 20 kubectl calls in sequence ------------------------
{
  echo '#!/usr/bin/env bash'
  echo 'set -e'
  printf 'kubectl=%q\n' "$kubectl_bin"
  cat <<'EOF'
for i in $(seq 0 19); do
  [ "$("$kubectl" get configmap "cm-$i" -n bench -o jsonpath='{.data.n}')" = "$i" ] || exit 1
done
EOF
} >"$work/verify.sh"

# Both must say "fixed" before they are timed.
"$KLAB_BIN" --color never check >"$work/check.txt" || { cat "$work/check.txt" >&2; exit 1; }
[ "$(grep -c '^PASS' "$work/check.txt")" -eq 20 ] || { cat "$work/check.txt" >&2; exit 1; }
bash "$work/verify.sh"

echo "klab: $("$KLAB_BIN" --version); kubectl: $kubectl_bin; $(kubectl version -o json | python3 -c 'import json,sys; v = json.load(sys.stdin); print("client", v["clientVersion"]["gitVersion"], "server", v["serverVersion"]["gitVersion"])')"
hyperfine --warmup 3 --runs "${RUNS:-20}" --export-json "$work/hyperfine.json" -N \
  -n "klab check (20 checks)" "$KLAB_BIN --color never check" \
  -n "verify.sh (20 × kubectl get -o jsonpath)" "bash $work/verify.sh"
python3 - "$work/hyperfine.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for stat in ("median", "mean"):
    klab, script = r[0][stat], r[1][stat]
    ratio = script / klab
    print(f"{stat:>6}: klab check {klab * 1000:.1f} ms, verify script {script * 1000:.1f} ms: klab is {ratio:.1f}x faster "
          f"(target >= 25x: {'met' if ratio >= 25 else 'NOT met'})")
print("(the median is the robust one on a shared machine: one slow run moves the mean)")
EOF
