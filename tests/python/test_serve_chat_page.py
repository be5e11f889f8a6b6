"""The chat page of `octet serve` in headless Chromium (Debian's `chromium`, driven over the
DevTools pipe, see cdp.py): load `/`, send a message, wait for the streamed reply and the
tokens/s line, and take a screenshot (written to $OCTET_SCREENSHOT if set, e.g.
docs/serve-chat.png). Skips when chromium is not installed.
"""
import os
import re
import shutil
import time

import pytest

from cdp import Browser, find_chromium
from serve_util import MODEL, octet_server


def test_chat_page_in_headless_chromium(tmp_path):
    chromium = find_chromium()
    if not chromium:
        pytest.skip("chromium is not installed (apt-get install chromium; see scripts/setup.sh)")
    if not MODEL.exists():
        pytest.skip("default model not installed")
    with octet_server(["-m", str(MODEL), "--mode", "int8", "-c", "1024"]) as srv:
        b = Browser(chromium, str(tmp_path / "profile"))
        try:
            page = b.open_page(f"http://127.0.0.1:{srv['port']}/")
            deadline = time.time() + 60
            while b.eval(page, "document.readyState") != "complete" or \
                    not b.eval(page, "!!document.getElementById('input')"):
                assert time.time() < deadline, "page did not load"
                time.sleep(0.2)
            assert b.eval(page, "document.title") == "octet chat"
            b.eval(page, """
                document.getElementById('max').value = '40';
                document.getElementById('temp').value = '0';
                document.getElementById('input').value = 'Write a short poem about the sea.';
                document.getElementById('send').click();""")
            deadline = time.time() + 240
            reply = meta = ""
            while time.time() < deadline:
                reply = b.eval(page, "(document.querySelector('.msg.assistant') || {}).textContent || ''")
                meta = b.eval(page, "(document.querySelector('.meta') || {}).textContent || ''")
                busy = not b.eval(page, "document.getElementById('stop').disabled")
                if reply and "tok/s" in meta and not busy:
                    break
                time.sleep(0.5)
            assert b.eval(page, "document.querySelector('.msg.user').textContent") == \
                "You: Write a short poem about the sea."
            assert reply.strip(), "no reply appeared"
            m = re.search(r"first token (\d+) ms, (\d+) tokens, ([\d.]+) tok/s", meta)
            assert m, meta
            assert int(m.group(2)) >= 2 and float(m.group(3)) > 0
            shot = tmp_path / "chat.png"
            b.screenshot(page, str(shot))
        finally:
            b.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    if os.environ.get("OCTET_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["OCTET_SCREENSHOT"])
