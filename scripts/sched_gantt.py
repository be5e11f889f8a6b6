#!/usr/bin/env python3
"""Gantt chart (PNG) of a prefill scheduler trace: `octet bench --trace` or `octet sim`.

Usage: sched_gantt.py TRACE.json OUT.png [--max-ms MS]

One row per processor (the trace's tracks), one bar per subgraph: integer subgraphs (int8
linears) dark, float subgraphs (norms, RoPE/KV/attention, activations) light, chunks told
apart by hue. The title carries each processor's busy share and the integer processor's
idle share (its bubbles).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("png")
    ap.add_argument("--max-ms", type=float, default=0, help="only the first MS milliseconds")
    a = ap.parse_args()
    with open(a.trace) as f:
        ev = json.load(f)["traceEvents"]
    names, title = {}, ""
    for e in ev:
        if e.get("ph") == "M" and e["name"] == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        if e.get("ph") == "M" and e["name"] == "process_name":
            title = e["args"]["name"]
    sl = [e for e in ev if e.get("ph") == "X"]
    if not sl:
        raise SystemExit("no slices in " + a.trace)
    t0 = min(e["ts"] for e in sl)
    t1 = max(e["ts"] + e["dur"] for e in sl)
    span = (t1 - t0) / 1000.0
    tids = sorted(names) or sorted({e["tid"] for e in sl})
    busy = {t: 0.0 for t in tids}
    for e in sl:
        busy[e["tid"]] += e["dur"] / 1000.0
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(14, 1.2 + 0.9 * len(tids)))
    for e in sl:
        s = (e["ts"] - t0) / 1000.0
        if a.max_ms and s > a.max_ms:
            continue
        c = cmap(e["args"]["chunk"] % 10)
        is_int = e.get("cat") == "int"
        ax.broken_barh([(s, e["dur"] / 1000.0)], (tids.index(e["tid"]) - 0.4, 0.8),
                       facecolors=c, alpha=1.0 if is_int else 0.45,
                       edgecolor="black" if is_int else "none", linewidth=0.2)
    ax.set_yticks(range(len(tids)))
    ax.set_yticklabels([f"{names.get(t, t)}\nbusy {100 * busy[t] / span:.0f}%" for t in tids])
    ax.set_xlabel("ms (colour: chunk; solid: integer subgraph, pale: float subgraph)")
    ax.set_xlim(0, a.max_ms if a.max_ms else span)
    ax.invert_yaxis()
    ax.set_title(f"{title}\nmakespan {span:.1f} ms", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
