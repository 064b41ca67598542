#!/usr/bin/env python3
"""Benchmark: `klab audit summary --by user,verb,resource` against the jq pipeline and DuckDB on
one generated audit log, side by side, and check that klab's counts equal jq's (and DuckDB's).

Usage: bench/audit/run.sh (builds klab, generates the log once, then runs this).
Prints one line per tool (best of N wall-clock runs, MB/s) and the ratios. Leaves nothing behind
but the log it was given.
"""
import json, os, subprocess, sys, time

log, klab = sys.argv[1], sys.argv[2]
runs = int(os.environ.get("RUNS", "3"))
size_mb = os.path.getsize(log) / 1e6

def best(fn, n=runs):
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return min(times), out

def run_klab(threads):
    def go():
        args = [klab, "audit", "summary", log, "--by", "user,verb,resource", "--top", "0", "-o", "json"]
        if threads:
            args += ["--threads", str(threads)]
        out = subprocess.run(args, check=True, capture_output=True).stdout
        return {(g["user"], g["verb"], g["resource"]): g["count"] for g in json.loads(out)["groups"]}
    return go

JQ = "jq -r 'select(.stage != \"RequestReceived\") | [.user.username, .verb, (.objectRef.resource // \"\")] | @tsv' \"$LOG\" | sort | uniq -c | sort -rn"

def run_jq():
    out = subprocess.run(["bash", "-c", JQ], env={**os.environ, "LOG": log, "LC_ALL": "C"}, check=True, capture_output=True, text=True).stdout
    counts = {}
    for line in out.splitlines():
        n, rest = line.strip().split(" ", 1)
        u, v, r = rest.split("\t")
        counts[(u, v, r)] = int(n)
    return counts

def run_duckdb():
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 2")
    rows = con.execute(
        "SELECT coalesce(\"user\".username, ''), verb, coalesce(objectRef.resource, ''), count(*) "
        f"FROM read_json_auto('{log}', format='newline_delimited') WHERE stage != 'RequestReceived' GROUP BY ALL"
    ).fetchall()
    return {(u, v, r): n for u, v, r, n in rows}

results = {}
subprocess.run(["cat", log], stdout=subprocess.DEVNULL, check=True)  # page cache
t, ref = best(lambda: subprocess.run(["cat", log], stdout=subprocess.DEVNULL, check=True))
results["cat (page-cache floor)"] = t
t2, k2 = best(run_klab(None)); results["klab (2 threads)"] = t2
t1, k1 = best(run_klab(1)); results["klab (1 thread)"] = t1
assert k1 == k2, "klab's counts depend on the thread count"
if os.environ.get("SKIP_JQ") != "1":
    tj, j = best(run_jq, 1); results["jq | sort | uniq -c"] = tj
    if j != k2:
        missing = set(j.items()) ^ set(k2.items())
        sys.exit(f"MISMATCH klab vs jq: {sorted(missing)[:10]}")
    print(f"counts: klab == jq ({len(j)} groups, {sum(j.values())} events)")
try:
    td, d = best(run_duckdb); results["duckdb (2 threads)"] = td
    print("counts: klab == duckdb" if d == k2 else f"counts: DuckDB differs on {len(set(d.items()) ^ set(k2.items()))} groups")
except ImportError:
    print("duckdb: not installed (pip install duckdb)")

print(f"log: {log}, {size_mb:.0f} MB")
for name, t in results.items():
    print(f"{name:28s} {t:8.3f} s  {size_mb / t:8.0f} MB/s")
if "jq | sort | uniq -c" in results:
    print(f"klab vs jq:     {results['jq | sort | uniq -c'] / t2:6.1f}x faster")
if "duckdb (2 threads)" in results:
    print(f"klab vs duckdb: {results['duckdb (2 threads)'] / t2:6.2f}x faster")
