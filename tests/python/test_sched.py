"""Prefill scheduler from the command line (docs/scheduler.md).

* `octet sim` on the phone profile: JSON fields, a single-processor schedule equals the sum
  of its costs (checked here from the trace, independently of the C++ simulator), and
  overlap beats one-at-a-time;
* `octet bench --trace` on Gemma 3 270M: a Chrome trace with one track per processor, one
  slice per subgraph, no processor running two slices at once, every subgraph after its
  chain predecessor; and a PNG next to it;
* bad input is a clear error.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OCTET = os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet"))
PHONE = str(ROOT / "docs" / "sched" / "phone-sd8g3.json")


def run(*args, check=True):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_sim_json_and_single_processor_sum(tmp_path):
    rows = [json.loads(l) for l in run("sim", "-m", "qwen1.5-1.8b", "--profile", PHONE,
                                        "--prompt", "1024", "--policy", "all", "--json",
                                        "--no-gantt").stdout.splitlines()]
    assert [r["policy"] for r in rows] == ["sequential", "inorder", "greedy", "ooo", "critical"]
    for r in rows:
        assert r["predicted_ms"] > 0 and 0 < r["integer_busy_share"] <= 1
    by = {r["policy"]: r for r in rows}
    assert by["inorder"]["predicted_ms"] < by["sequential"]["predicted_ms"]
    assert by["greedy"]["predicted_ms"] < by["sequential"]["predicted_ms"]
    # ooo runs the best of greedy / critical / inorder on the simulator, so it is exactly that.
    best = min(by[p]["predicted_ms"] for p in ("greedy", "critical", "inorder"))
    assert by["ooo"]["predicted_ms"] == pytest.approx(best, rel=1e-12)
    assert by[by["ooo"]["ran"]]["predicted_ms"] == pytest.approx(best, rel=1e-12)
    # One processor: the makespan is the sum of the slices (no gaps, no overlap).
    tr = tmp_path / "cpu.json"
    r = json.loads(run("sim", "-m", "qwen1.5-1.8b", "--profile", PHONE, "--prompt", "300",
                       "--processors", "shared:1", "--policy", "ooo", "--json", "--no-gantt",
                       "--trace", str(tr)).stdout)
    sl = [e for e in json.load(open(tr))["traceEvents"] if e["ph"] == "X"]
    assert len(sl) == r["subgraphs"]
    assert sum(e["dur"] for e in sl) / 1000 == pytest.approx(r["predicted_ms"], rel=1e-9)


def test_sim_optimum_not_worse_than_greedy():
    rows = [json.loads(l) for l in run("sim", "-m", "qwen1.5-1.8b", "--profile", PHONE,
                                        "--prompt", "768", "--layers", "1", "--policy", "ooo",
                                        "--optimum", "--json", "--no-gantt").stdout.splitlines()]
    ooo, opt = rows
    assert opt["policy"] == "optimum" and opt["exact"]
    assert opt["predicted_ms"] <= ooo["predicted_ms"] + 1e-9


def test_bench_trace(tmp_path, gemma):
    tr = tmp_path / "t.json"
    # Two chunks (256 + 44), so the trace shows chunk-to-chunk overlap.
    r = run("bench", "-m", gemma, "--prompts", "300", "--chunk", "256", "--gen", "0",
            "--policy", "ooo", "--processors", "int8:1,float:1", "--trace", str(tr), "--json")
    row = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
    s = row["sched"]
    assert s["path"] == "scheduled" and s["policy"] == "ooo"
    ev = json.load(open(tr))["traceEvents"]
    tracks = [e for e in ev if e.get("name") == "thread_name"]
    assert [t["args"]["name"] for t in tracks] == ["int8:1", "float:1"]
    sl = [e for e in ev if e["ph"] == "X"]
    assert len(sl) == s["subgraphs"] == 2 * (1 + 8 * 18) + 1
    for tid in (0, 1):
        iv = sorted((e["ts"], e["ts"] + e["dur"]) for e in sl if e["tid"] == tid)
        assert all(b[0] >= a[1] - 1e-3 for a, b in zip(iv, iv[1:]))
        want = "int" if tid == 0 else "float"
        assert all(e["cat"] == want for e in sl if e["tid"] == tid)
    # Chain order inside a chunk: node n starts after node n-1 of the same chunk ends.
    by_node = {e["args"]["node"]: e for e in sl}
    for n, e in by_node.items():
        p = by_node.get(n - 1)
        if p and p["args"]["chunk"] == e["args"]["chunk"]:
            assert e["ts"] >= p["ts"] + p["dur"] - 1e-3
    if os.path.exists(ROOT / ".venv" / "bin" / "python"):
        assert (tmp_path / "t.png").stat().st_size > 1000


def test_bad_input_is_a_clear_error(gemma):
    r = run("sim", "-m", "qwen1.5-1.8b", "--profile", "/nonexistent.json", check=False)
    assert r.returncode != 0 and "cannot open profile" in r.stderr
    r = run("sim", "-m", "no-such-shape", "--profile", PHONE, check=False)
    assert r.returncode != 0 and "neither a model file nor a synthetic shape" in r.stderr
    r = run("bench", "-m", gemma, "--prompts", "64", "--gen", "0", "--processors", "npu:1",
            check=False)
    assert r.returncode != 0 and "unknown processor" in (r.stderr + r.stdout)
