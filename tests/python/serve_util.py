"""Starting `octet serve` for tests and scripts: a free port, wait for the listening line."""
import contextlib
import json
import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OCTET = os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet"))
MODEL = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"


@contextlib.contextmanager
def octet_server(args, apps=None, tmpdir=None, octet=OCTET, timeout=180):
    """Yields {"port", "proc", "stderr": list of lines}. apps: dict written to an apps file."""
    cmd = [octet, "serve", "--port", "0"] + list(args)
    if apps is not None:
        path = Path(tmpdir) / "apps.json"
        path.write_text(json.dumps(apps))
        cmd += ["--apps", str(path)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines, seen = queue.Queue(), []

    def pump():
        for line in proc.stderr:
            seen.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    port, deadline = None, time.time() + timeout
    while port is None and time.time() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        m = re.search(r"listening on http://[\d.]+:(\d+)", line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        raise RuntimeError("server did not start:\n" + "".join(seen))
    try:
        yield {"port": port, "proc": proc, "stderr": seen}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
