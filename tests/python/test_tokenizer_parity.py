"""Exact tokenizer parity of `octet tokenize` with llama.cpp (through llama-cpp-python).

- Gemma 3 vocabulary (SentencePiece, models/gemma-3-270m-q4_k_m.gguf): wikitext lines, code,
  whitespace runs, digits, CJK, emoji, mixed scripts, special-token texts.
- Byte-level BPE: vocab-only GGUFs written here with the gguf package (qwen2 / llama-bpe
  pre-tokenizers), with merges trained in the test on a small corpus.
Each vocabulary also checks the detokenisation round trip. Strings go to octet in one
`--batch` call per setting, so the whole file runs in well under two minutes.
"""
import collections
import ctypes
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OCTET = os.environ.get("OCTET_BIN", str(ROOT / "build" / "octet"))
SHARED = Path(os.environ.get("OCTET_SHARED_DATA", ROOT.parent / "shared" / "data"))
GEMMA = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"

llama_cpp = pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

HANDMADE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", " \n \n", "\t\tindented\ttabs",
    "trailing spaces   ", "   leading spaces", "a  b   c    d", "line1\nline2\r\nline3\r",
    "Hello world", " Hello world", "Hello World!", "Hello, world! How are you?",
    "1", "12", "123", "1234", "12345", "3.14159265", "1,000,000 and 2024-01-01", "0x7fff",
    "你好，世界！", "日本語のテキストです。", "한국어 문장입니다.", "中文English混合123",
    "Привет, мир!", "مرحبا بالعالم", "नमस्ते दुनिया", "Ελληνικά γράμματα", "עברית",
    "emoji 👍🏽 🦙 🇫🇷 ❤️ 😀😀😀", "café naïve résumé Ångström", "ｆｕｌｌｗｉｄｔｈ",
    "I'm sure you'll see it's what we'd've DONE'LL", "don't STOP 'til",
    "def f(x):\n    return x**2  # square\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "<html><body><p>Hi</p></body></html>", "{\"key\": [1, 2, 3], \"v\": null}",
    "$ ls -la | grep foo && echo 'done'", "SELECT * FROM t WHERE id=42;",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos>", "<|im_start|>system\nYou are helpful.<|im_end|>", "<s>[INST] hi [/INST]",
    "a\u00a0b\u3000c\u2003d", "zero\u200bwidth", "combining e\u0301 a\u0308",
    "!!!???...---", "....\n\n\n\n....", "x" * 100, " " * 40, "\n" * 12, "ab" * 50,
    "The quick brown fox jumps over the lazy dog. " * 4,
]


def wikitext_lines(n=300):
    p = SHARED / "wikitext-2" / "wiki.test.raw"
    if not p.exists():
        return []
    lines = [l for l in p.read_text(encoding="utf-8").split("\n") if l.strip()]
    step = max(1, len(lines) // n)
    # Keep the leading space wikitext lines have: it exercises the prefix-space rules.
    return lines[::step][:n]


def octet_batch(model, strings, add_bos, special, tmp_path):
    inp = tmp_path / "batch.jsonl"
    inp.write_text("".join(json.dumps(s) + "\n" for s in strings), encoding="utf-8")
    cmd = [OCTET, "tokenize", "-m", str(model), "--batch", str(inp)]
    if not add_bos:
        cmd.append("--no-bos")
    if not special:
        cmd.append("--no-special")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(out) == len(strings)
    return out


def llama_detokenize(llm, tokens):
    """llama.cpp's token_to_piece concatenated (no BOS-space quirk, no 32-byte piece limit)."""
    buf = ctypes.create_string_buffer(1024)
    out = b""
    for t in tokens:
        n = llama_cpp.llama_token_to_piece(llm._model.vocab, llama_cpp.llama_token(t), buf,
                                           1024, 0, False)
        assert 0 <= n <= 1024
        out += buf.raw[:n]
    return out


def compare(name, model, strings, tmp_path, settings=((True, False), (False, True)), prefix=""):
    llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    report = {}
    for add_bos, special in settings:
        ours = octet_batch(model, strings, add_bos, special, tmp_path)
        bad = []
        for s, o in zip(strings, ours):
            want = llm.tokenize(s.encode("utf-8"), add_bos=add_bos, special=special)
            if o["tokens"] != want:
                bad.append((s, o["tokens"], want))
        report[(add_bos, special)] = (len(strings) - len(bad), len(strings))
        print(f"{name} add_bos={add_bos} special={special}: "
              f"{len(strings) - len(bad)}/{len(strings)} strings match")
        for s, got, want in bad[:5]:
            print(f"  MISMATCH {s!r}\n    octet {got}\n    llama {want}")
        assert not bad, f"{name}: {len(bad)} mismatches (first: {bad[0][0]!r})"

    # Detokenisation round trip (no BOS, special texts as plain text): our decode gives the
    # input back exactly and matches llama.cpp's token_to_piece concatenation.
    ours = octet_batch(model, strings, False, False, tmp_path)
    rt_ok = lc_ok = 0
    for s, o in zip(strings, ours):
        rt_ok += o["decoded"] == prefix + s
        lc_ok += llama_detokenize(llm, o["tokens"]).decode("utf-8", errors="replace") == o["decoded"]
    print(f"{name} round trip: decode(encode(s)) == {prefix!r} + s for {rt_ok}/{len(strings)}; "
          f"decode == llama.cpp detokenize for {lc_ok}/{len(strings)}")
    assert lc_ok == len(strings)
    return report, rt_ok


def test_gemma3_parity(tmp_path):
    if not GEMMA.exists():
        pytest.skip(f"default model not found at {GEMMA}")
    strings = HANDMADE + wikitext_lines()
    _, rt = compare("gemma3", GEMMA, strings, tmp_path)
    # SentencePiece without a prefix space is lossless on valid UTF-8.
    assert rt == len(strings)


def test_llama_spm_vocab_parity(tmp_path):
    p = SHARED / "tokenizers" / "ggml-vocab-llama-spm.gguf"
    if not p.exists():
        pytest.skip("shared tokenizer data not found")
    strings = [s for s in HANDMADE if s] + wikitext_lines(100)
    # add_space_prefix: without BOS the decoded text keeps SentencePiece's leading space.
    _, rt = compare("llama-spm", p, strings, tmp_path, prefix=" ")
    assert rt == len(strings)


# ---- byte-level BPE vocabularies built here ----

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train_bpe(text, n_merges):
    """Plain byte-level BPE training: most frequent adjacent pair first (ties: first seen)."""
    b2u = bytes_to_unicode()
    words = collections.Counter(re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text))
    seqs = {w: [b2u[b] for b in w.encode("utf-8")] for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        merges.append((a, b))
        for w in words:
            s = seqs[w]
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


# Whole-word tokens no merge sequence builds: Llama 3 (ignore_merges) takes such a word whole,
# Qwen2 spells it with merges.
EXTRA_WORDS = ["\u0120tokenization", "\u0120tokenizer"]


def write_bpe_gguf(path, arch, pre, merges, specials, bos, eos, add_bos):
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    types = [gguf.TokenType.NORMAL] * 256
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
            types.append(gguf.TokenType.NORMAL)
    for w in EXTRA_WORDS:
        if w not in tokens:
            tokens.append(w)
            types.append(gguf.TokenType.NORMAL)
    for text, ttype in specials:
        tokens.append(text)
        types.append(ttype)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_context_length(512)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" for a, b in merges])
    w.add_bos_token_id(tokens.index(bos))
    w.add_eos_token_id(tokens.index(eos))
    w.add_add_bos_token(add_bos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bpe_corpus():
    lines = wikitext_lines(400)
    return "\n".join(lines[:250]) + "\n" + "\n".join(HANDMADE[30:45]), lines[250:]


@pytest.mark.parametrize("arch,pre", [("qwen2", "qwen2"), ("llama", "llama-bpe")])
def test_bpe_parity(tmp_path, arch, pre):
    train, held_out = bpe_corpus()
    if not train.strip():
        pytest.skip("wikitext not found")
    merges = train_bpe(train, 300)
    C, U = gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED
    if pre == "qwen2":
        specials = [("<|endoftext|>", C), ("<|im_start|>", C), ("<|im_end|>", C), ("<tool>", U)]
        bos, eos, add_bos = "<|endoftext|>", "<|im_end|>", False
    else:
        specials = [("<|begin_of_text|>", C), ("<|end_of_text|>", C),
                    ("<|start_header_id|>", C), ("<|end_header_id|>", C), ("<|eot_id|>", C),
                    ("<tool>", U)]
        bos, eos, add_bos = "<|begin_of_text|>", "<|eot_id|>", True
    path = tmp_path / f"vocab-{pre}.gguf"
    write_bpe_gguf(path, arch, pre, merges, specials, bos, eos, add_bos)
    strings = HANDMADE + held_out + [
        "<|im_start|>user\nhi<|im_end|>", "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "use <tool> here<tool>", "1234567 89 0", "x'S y'Re z'VE", "1990 2024 31415926",
        "tokenization tokenizer", "a tokenization, the tokenizer", "in 1997 and 2008",
    ]
    _, rt = compare(f"bpe-{pre}", path, strings, tmp_path)
    assert rt == len(strings)  # byte-level BPE is lossless
