"""Exports the trained weights to the shipped ONNX file (opset 17, dynamic batch, the layout
declared in the metadata), checks ONNX Runtime against PyTorch, and writes the reference
fixtures the Rust tests compare against and the model card's figures.

    python scripts/transformer/export.py --out data/transformer
"""

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import layout
from model import PatchForecaster
from train import prepare_rows

OPSET = 17


def metadata(arch: dict) -> dict[str, str]:
    return {
        "pscaler.layout": layout.LAYOUT,
        "pscaler.context": str(layout.CONTEXT),
        "pscaler.horizon": str(layout.HORIZON),
        "pscaler.patch": str(layout.PATCH),
        "pscaler.quantiles": ",".join(str(q) for q in layout.QUANTILES),
        "pscaler.arch": json.dumps(arch, sort_keys=True),
    }


def export(model: torch.nn.Module, path: Path, arch: dict, layout_name: str = layout.LAYOUT) -> None:
    ctx = torch.zeros(2, layout.CONTEXT)
    step = torch.zeros(2, 1)
    torch.onnx.export(
        model,
        (ctx, step),
        str(path),
        input_names=["context", "step"],
        output_names=["quantiles"],
        dynamic_axes={"context": {0: "batch"}, "step": {0: "batch"}, "quantiles": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    m = onnx.load(str(path))
    m.producer_name = "predictive-scaler scripts/transformer"
    for k, v in metadata(arch).items():
        if k == "pscaler.layout":
            v = layout_name
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def fixture_inputs(seed: int) -> list[tuple[str, np.ndarray, int]]:
    """Synthetic raw histories covering every branch of the layout."""
    rng = np.random.default_rng(seed)
    cases = []
    t = np.arange(600)
    cases.append(("daily_5min", 100 + 40 * np.sin(t / 288 * 2 * np.pi) + rng.normal(0, 3, 600), 300))
    x = 500 + 200 * np.sin(np.arange(1700) / 1440 * 2 * np.pi) + rng.normal(0, 20, 1700)
    x[[5, 700, 701, 1650]] = np.nan
    x[900:960] = np.nan
    cases.append(("minute_gaps", x, 60))
    cases.append(("short_30min", 1e4 + 3e3 * np.cos(np.arange(90) / 48 * 2 * np.pi) + rng.normal(0, 100, 90), 1800))
    cases.append(("constant", np.full(400, 7.0), 300))
    x = 2e6 * (1 + 0.3 * np.sin(np.arange(350) / 288 * 2 * np.pi)) + rng.normal(0, 2e4, 350)
    x[[100, 200, 340]] *= 3
    cases.append(("large_spikes", x, 300))
    x = rng.poisson(20, 320).astype(np.float64)
    x[:50] = np.nan
    x[150:200] = np.nan
    cases.append(("counts_leading_gap", x, 600))
    return cases


def fixtures(model: torch.nn.Module, sess: ort.InferenceSession, seed: int) -> tuple[list, float]:
    out, worst = [], 0.0
    for name, x, step in fixture_inputs(seed):
        z, feat, loc, scale, flat = layout.prepare(x, step)
        # training's vectorized preparation gives the same window
        zt, _, _ = prepare_rows(layout.blocks(x, layout.agg_of(step), layout.CONTEXT)[None])
        assert np.abs(zt[0] - z).max() <= 1e-5 * max(1.0, float(np.abs(z).max())), name
        with torch.no_grad():
            q = model(torch.from_numpy(z)[None], torch.tensor([[feat]]))[0].numpy()
        qo = sess.run(None, {"context": z[None], "step": np.array([[feat]], dtype=np.float32)})[0][0]
        worst = max(worst, float(np.abs(q - qo).max()))
        values = layout.to_leads(q, loc, scale, step, layout.reach(step), flat)
        out.append({
            "name": name,
            "step_s": step,
            "history": [None if not math.isfinite(v) else float(v) for v in x],
            "context": [float(v) for v in z],
            "step_feature": float(feat),
            "loc": loc,
            "scale": scale,
            "flat": flat,
            "quantiles_z": [[float(v) for v in row] for row in q],
            "p10": [float(v) for v in values[0]],
            "p50": [float(v) for v in values[1]],
            "p90": [float(v) for v in values[2]],
        })
    return out, worst


def test_models(out: Path, seed: int) -> None:
    """Two tiny models for the Rust tests: an untrained one (p50 = the last value) and the
    same declaring another layout version (which the Rust side must refuse)."""
    torch.manual_seed(seed)
    arch = {"d": 8, "heads": 2, "layers": 1, "ff": 16}
    tiny = PatchForecaster(**arch, dropout=0.0).eval()
    (out / "fixtures").mkdir(exist_ok=True)
    export(tiny, out / "fixtures" / "last_value.onnx", arch)
    export(tiny, out / "fixtures" / "other_layout.onnx", arch, layout_name="pscaler-patch-v0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/transformer"))
    ap.add_argument("--weights", type=Path, help="default: OUT/weights.pt")
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    report = json.loads((args.out / "training.json").read_text())
    arch = report["arch"]
    model = PatchForecaster(**arch, dropout=0.0)
    model.load_state_dict(torch.load(args.weights or args.out / "weights.pt", weights_only=True))
    model.eval()
    path = args.out / "model.onnx"
    export(model, path, arch)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fx, worst = fixtures(model, sess, args.seed)
    (args.out / "fixtures.json").write_text(json.dumps({"layout": layout.LAYOUT, "cases": fx}) + "\n")
    test_models(args.out, args.seed)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    report["onnx"] = {
        "file": "model.onnx",
        "sha256": sha,
        "bytes": path.stat().st_size,
        "opset": OPSET,
        "torch_vs_onnxruntime_max_abs": worst,
        "onnxruntime": ort.__version__,
    }
    (args.out / "training.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{path}: {path.stat().st_size} bytes, sha256 {sha}; onnxruntime vs torch max |diff| {worst:.2e}")


if __name__ == "__main__":
    main()
