"""Calibration version 3: the per-tensor clip is the largest value in [pct, absmax] whose
estimated int8 noise on the bulk stays within --qerr-target (docs/calibration.md)."""
import json
import subprocess


def _calib(octet_bin, model, out, *extra):
    r = subprocess.run([octet_bin, "calibrate", "-m", model, "-o", str(out), "-q", *extra],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.load(open(out))


def _slots(c):
    return [(il, name, s) for il, layer in enumerate(c["layers"]) for name, s in layer.items()]


def test_noise_target_orders_the_clips(octet_bin, stories_path, tmp_path):
    fixed = _calib(octet_bin, stories_path, tmp_path / "t0.json", "--qerr-target", "0")
    dflt = _calib(octet_bin, stories_path, tmp_path / "td.json")
    loose = _calib(octet_bin, stories_path, tmp_path / "t1.json", "--qerr-target", "1")
    assert dflt["version"] == 3 and dflt["options"]["qerr_target"] == 0.0075
    assert fixed["options"]["qerr_target"] == 0
    ratio = dflt["options"]["ratio"]
    clipped = 0
    for (il, name, f), (_, _, d), (_, _, l) in zip(_slots(fixed), _slots(dflt), _slots(loose)):
        where = f"layer {il} {name}"
        # Same histograms (same text, same model): same absmax and percentile everywhere.
        assert abs(f["absmax"] - d["absmax"]) <= 1e-6 * f["absmax"], where
        assert abs(f["pct"] - d["pct"]) <= 1e-6 * f["pct"], where
        # Every linear input saw the text (the last layer's too: calibration runs all its rows).
        assert f["pct"] > 0 and f["absmax"] > 0, where
        if f["absmax"] / f["pct"] <= ratio:
            # Not an outlier tensor: full range, whatever the target.
            for c in (f, d, l):
                assert c["clip"] == c["absmax"], where
            continue
        clipped += 1
        # Target 0: the version-2 rule (clip at the percentile).
        assert f["clip"] == f["pct"], where
        # A larger target never clips tighter; a loose one relaxes all the way to absmax.
        assert f["clip"] <= d["clip"] <= l["clip"] <= l["absmax"], where
        assert l["clip"] == l["absmax"], where
        # A clip relaxed beyond pct keeps its noise estimate within the target.
        if d["clip"] > d["pct"]:
            assert d["qerr"] <= 0.0075 + 1e-12, where
        # Noise grows with the clip.
        assert f["qerr"] <= d["qerr"] + 1e-12 and d["qerr"] <= l["qerr"] + 1e-12, where
        # Fewer entries beyond a wider clip.
        assert l["outlier_rate"] <= d["outlier_rate"] <= f["outlier_rate"] + 1e-12, where
    assert clipped > 0, "stories260K should have some clipped linear inputs"
