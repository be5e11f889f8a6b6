"""The test cache itself: content keys shared by clones, and a bounded size (a key that
changed with the model's path once left 58 GB of F32 copies behind and filled the disk)."""
import os
import time

import harness


def _file(path, data: bytes, age_s: float = 0):
    with open(path, "wb") as f:
        f.write(data)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return str(path)


def test_file_key_follows_content_not_path(tmp_path):
    data = os.urandom(3 << 20)
    a = _file(tmp_path / "a.gguf", data)
    (tmp_path / "clone").mkdir()
    b = _file(tmp_path / "clone" / "a.gguf", data, age_s=100)
    assert harness.file_key(a) == harness.file_key(b)
    # A change in the last MiB (where a GGUF keeps its last tensors) or in the size shows.
    c = _file(tmp_path / "c.gguf", data[:-1] + bytes([data[-1] ^ 1]))
    d = _file(tmp_path / "d.gguf", data + b"\0")
    assert len({harness.file_key(a), harness.file_key(c), harness.file_key(d)}) == 3


def test_prune_keeps_the_cache_bounded_least_recently_used_first(tmp_path, monkeypatch):
    monkeypatch.setenv("OCTET_TEST_CACHE", str(tmp_path))
    mib = b"\0" * (1 << 20)
    oldest = _file(tmp_path / "llama-logits-1.npy", mib * 3, age_s=3000)
    used = _file(tmp_path / "llama-logits-2.npy", mib * 3, age_s=2000)
    newer = _file(tmp_path / "gemma3-270m-f32-3.gguf", mib * 3, age_s=1000)
    recent = _file(tmp_path / "llama-logits-4.npy", mib * 3, age_s=10)
    assert harness.cached(used)  # a hit makes it the most recently used of the old ones
    leftover = _file(tmp_path / "x.gguf.123.tmp", mib, age_s=7 * 3600)
    fresh_tmp = _file(tmp_path / "y.gguf.456.tmp", mib, age_s=60)
    (tmp_path / "tmpabc").mkdir()
    _file(tmp_path / "tmpabc" / "logits.f32", mib)
    os.utime(tmp_path / "tmpabc", (time.time() - 7 * 3600,) * 2)

    gone = harness.prune_cache(max_bytes=7 << 20)
    left = set(os.listdir(tmp_path))
    # 12 MiB of artefacts over a 7 MiB bound: the two least recently used go; the one used
    # within the last 10 minutes stays whatever its rank; stale temporaries go, fresh ones stay.
    assert set(gone) == {"llama-logits-1.npy", "gemma3-270m-f32-3.gguf", "x.gguf.123.tmp",
                         "tmpabc"}
    assert left == {"llama-logits-2.npy", "llama-logits-4.npy", "y.gguf.456.tmp"}
    assert not os.path.exists(oldest) and not os.path.exists(newer)
    assert os.path.exists(recent) and os.path.exists(fresh_tmp)


def test_need_disk_fails_clearly(tmp_path):
    harness.need_disk(str(tmp_path), 1, "a byte")
    try:
        harness.need_disk(str(tmp_path), 1 << 60, "an exabyte")
    except AssertionError as e:
        assert "an exabyte needs" in str(e) and "GiB free" in str(e)
    else:
        raise AssertionError("need_disk accepted 1 EiB")
