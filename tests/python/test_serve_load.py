"""A tiny run of scripts/loadtest.py (the full one is 32 clients for 2 minutes, see
docs/serve.md): 4 streaming clients for a few seconds, two apps, a queue limit of 1 and a
background rate limit of 1 request per minute, and one decode worker (--batch 1; with more
workers a quiet machine drains the queue too fast to overflow it), so both refusals (503 and
429) happen. Every
request must complete or be refused, and the server must survive.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from serve_util import MODEL, OCTET, ROOT


def test_loadtest_small(tmp_path):
    if not MODEL.exists():
        pytest.skip("default model not installed")
    out = tmp_path / "report.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loadtest.py"), "--octet", OCTET,
         "--clients", "4", "--duration", "8", "--max-tokens", "4", "--max-queue", "1",
         "--batch", "1",
         "--bg-rpm", "1", "--ctx", "512", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(out.read_text())
    assert r["server_alive"] and r["health_failures"] == 0
    fg, bg = r["fg"], r["bg"]
    assert fg["failed"] == 0 and bg["failed"] == 0
    assert fg["completed"] >= 1 and fg["ttft_p95_ms"] is not None
    assert bg["refused_429"] >= 1, r
    assert fg["refused_503"] + bg["refused_503"] >= 1, r
    assert 0 < r["rss_peak_mib"] < 4096
