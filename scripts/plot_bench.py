#!/usr/bin/env python3
"""Plots `octet bench --json` output: prefill tok/s vs prompt length, one line per
(engine, model, mode). Usage: plot_bench.py OUT.png FILE.jsonl [FILE.jsonl ...]"""
import json
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    series = defaultdict(list)
    for path in sys.argv[2:]:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                label = f"{r['engine']}"
                if r.get("mode"):
                    label += f" {r['mode']}"
                label += f" — {os.path.basename(r['model'])}"
                series[label].append((r["prompt_tokens"], r["prefill_tok_s"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("prefill tokens/s")
    ax.set_title("Prefill throughput, 2 cores (octet bench --compare llama.cpp)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[1], dpi=110)


if __name__ == "__main__":
    main()
