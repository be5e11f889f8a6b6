"""octet's dequantisers against the gguf package (gguf.quants.dequantize) as the oracle.

Each GGUF is dumped by `octet info --dump-all` (every tensor's first rows as float32, file
order) and compared element-wise with the package's dequantisation of the same bytes: equal
bits, or at most 1 ulp apart (both NaN also counts as equal).
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import GGUFReader, GGUFWriter  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OCTET = os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet"))
SHARED = Path(os.environ.get("OCTET_SHARED_DATA", ROOT.parent / "shared" / "data"))
GEMMA = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
STORIES = SHARED / "stories260K" / "stories260K.gguf"
MAX_ROWS = 48

ALL_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
             T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]

# Byte offsets of each block's fp16 scale fields (fp32 for Q8_K): random blocks get finite
# scales there, as real files have.
F16_SCALES = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
              T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def oracle_dequantize(rows, qtype):
    """gguf.quants.dequantize; Q8_K (which the package lacks) from its definition in numpy:
    block = f32 d, 256 int8 q, 16 int16 bsums (unused); value = d * q."""
    if qtype == T.Q8_K:
        blocks = rows.reshape(-1, 292)
        d = blocks[:, :4].copy().view(np.float32)
        q = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
        return (d * q).reshape(rows.shape[0], -1)
    return gguf.quants.dequantize(rows, qtype)


def octet_dump(path, tmp_path, max_rows=MAX_ROWS):
    out = tmp_path / (Path(path).name + ".f32")
    r = subprocess.run([OCTET, "info", "-m", str(path), "--dump-all", str(out), "--max-rows", str(max_rows)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return np.fromfile(out, dtype=np.float32)


def ordered(x):
    """float32 bits mapped to integers that are monotonic in the float value (+0 == -0)."""
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def assert_close_ulp(got, want, what):
    assert got.shape == want.shape, what
    both_nan = np.isnan(got) & np.isnan(want)
    diff = np.abs(ordered(got) - ordered(want))
    diff[both_nan] = 0
    bad = np.flatnonzero(diff > 1)
    assert bad.size == 0, (f"{what}: {bad.size} of {got.size} elements differ by more than 1 ulp; "
                           f"first at {bad[0]}: octet {got[bad[0]]!r} vs gguf {want[bad[0]]!r}")
    return int((diff == 1).sum())


def check_file(path, tmp_path, max_rows=MAX_ROWS):
    """Compares every tensor; returns {type name: number of elements checked}."""
    got = octet_dump(path, tmp_path, max_rows)
    reader = GGUFReader(str(path))
    pos, covered = 0, {}
    for t in reader.tensors:
        qtype = T(int(t.tensor_type))
        block, tsize = GGML_QUANT_SIZES[qtype]
        ne = [int(d) for d in t.shape]  # ne[0] first
        ne0 = ne[0]
        rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
        take = min(rows, max_rows)
        row_bytes = ne0 // block * tsize
        raw = np.frombuffer(t.data.tobytes(), dtype=np.uint8)
        assert raw.size == rows * row_bytes, t.name
        want = oracle_dequantize(raw.reshape(rows, row_bytes)[:take], qtype)
        want = np.asarray(want, dtype=np.float32).reshape(-1)
        n = take * ne0
        assert pos + n <= got.size, f"octet dump too short at {t.name}"
        assert_close_ulp(got[pos:pos + n], want, f"{path.name}:{t.name} ({qtype.name})")
        pos += n
        covered[qtype.name] = covered.get(qtype.name, 0) + n
    assert pos == got.size, "octet dumped more values than the tensors hold"
    return covered


def test_stories260k(tmp_path):
    if not STORIES.exists():
        pytest.skip(f"test data missing: {STORIES}")
    covered = check_file(STORIES, tmp_path)
    assert covered  # every tensor compared (F32 model)


def test_gemma3_every_tensor_type(tmp_path):
    if not GEMMA.exists():
        pytest.skip(f"no {GEMMA}")
    covered = check_file(GEMMA, tmp_path, max_rows=8)
    print("gemma types:", covered)
    # Q4_K_M mixes at least Q4_K and Q6_K (plus F32 norms).
    assert {"Q4_K", "Q6_K", "F32"} <= set(covered)


def random_blocks(qtype, rows, ne0, rng):
    block, tsize = GGML_QUANT_SIZES[qtype]
    nb = rows * ne0 // block
    b = rng.integers(0, 256, size=(nb, tsize), dtype=np.uint8)
    if qtype == T.Q8_K:
        b[:, 0:4] = (rng.standard_normal(nb).astype(np.float32) * 0.01).view(np.uint8).reshape(nb, 4)
    else:
        for off in F16_SCALES[qtype]:
            # Normal and subnormal finite halves, both signs.
            s = (rng.standard_normal(nb) * rng.choice([1e-1, 1e-3, 1e-6], nb)).astype(np.float16)
            b[:, off:off + 2] = s.view(np.uint8).reshape(nb, 2)
    return b.reshape(rows, ne0 // block * tsize)


def special_floats(rng, n):
    x = rng.standard_normal(n).astype(np.float32)
    x[:12] = [0.0, -0.0, np.inf, -np.inf, 1e-40, -1e-40, 65504.0, 70000.0, 6e-8, 3e38, -3e38, 1.0]
    return x


@pytest.mark.parametrize("qtype", ALL_TYPES, ids=lambda q: q.name)
def test_synthetic(qtype, tmp_path):
    rng = np.random.default_rng(int(qtype) + 1)
    block, _ = GGML_QUANT_SIZES[qtype]
    ne0 = 512 if block > 1 else 300
    rows = 5
    path = tmp_path / f"{qtype.name}.gguf"
    w = GGUFWriter(str(path), "test")
    x = special_floats(rng, rows * ne0).reshape(rows, ne0)
    if qtype == T.F32:
        w.add_tensor("f32", x)
        w.add_tensor("f32_bits", rng.integers(0, 2**32, size=(rows, ne0), dtype=np.uint32).view(np.float32))
    elif qtype == T.F16:
        with np.errstate(over="ignore"):  # 70000 and 3e38 become inf on purpose
            w.add_tensor("f16", x.astype(np.float16))
        w.add_tensor("f16_bits", rng.integers(0, 2**16, size=(rows, ne0), dtype=np.uint16).view(np.float16))
    else:
        try:  # the package's own quantiser, where it has one
            q = gguf.quants.quantize(rng.standard_normal((rows, ne0)).astype(np.float32), qtype)
            w.add_tensor("quantized", q, raw_dtype=qtype)
        except NotImplementedError:
            pass
        if qtype == T.BF16:
            bits = rng.integers(0, 2**16, size=(rows, ne0), dtype=np.uint16)
            w.add_tensor("bf16_bits", bits.view(np.uint8).reshape(rows, ne0 * 2), raw_dtype=qtype)
        else:
            w.add_tensor("random_blocks", random_blocks(qtype, rows, ne0, rng), raw_dtype=qtype)
            w.add_tensor("one_block", random_blocks(qtype, 1, block, rng), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    covered = check_file(path, tmp_path, max_rows=rows)
    assert covered.get(qtype.name, 0) >= rows * ne0, covered


def test_dump_all_rejects_unsupported(tmp_path):
    """A type octet cannot dequantise fails the dump with a message, instead of garbage."""
    path = tmp_path / "iq2.gguf"
    w = GGUFWriter(str(path), "test")
    _, tsize = GGML_QUANT_SIZES[T.IQ2_XXS]
    w.add_tensor("t", np.zeros((1, tsize), dtype=np.uint8), raw_dtype=T.IQ2_XXS)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = subprocess.run([OCTET, "info", "-m", str(path), "--dump-all", str(tmp_path / "o.f32")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "IQ2_XXS" in r.stderr
    assert not (tmp_path / "o.f32").exists()
