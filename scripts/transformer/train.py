"""Trains the short-term transformer on CPU (seeded, deterministic) and writes its weights and
training report; export.py turns them into the shipped ONNX file.

    python scripts/transformer/train.py --shared ../shared --out data/transformer

Windows: every origin of every training series (shared/data cut before each series' test
region, plus synthetic series); the last VAL_FRACTION of each real series' origins is kept
out of training and scores the model. Loss: pinball of p10/p50/p90, leads weighted 1/sqrt(k).
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import data
from layout import CONTEXT, HORIZON, LAYOUT, QUANTILES, step_feature
from model import PatchForecaster

VAL_FRACTION = 0.15
MIN_HISTORY = 48  # model steps of history a training origin needs at least


class Windows:
    """All series' model-step blocks in one array, NaN-padded, and the origins to draw from."""

    def __init__(self, series: list[data.Train]):
        parts, self.train, self.val, self.names = [], [], [], []
        offset = 0
        for sid, s in enumerate(series):
            b = data.block_series(data.regularize(s), s.step_s)
            feat = step_feature(s.step_s)
            parts += [np.full(CONTEXT, np.nan), b, np.full(HORIZON, np.nan)]
            base = offset  # big[base + i : base + i + CONTEXT] is the context of origin i - 1 + ... see window()
            origins = np.arange(MIN_HISTORY - 1, len(b) - 1)
            fin = np.isfinite(b)
            # an origin needs a finite value at the origin and at lead 1
            ok = fin[origins] & fin[np.minimum(origins + 1, len(b) - 1)]
            origins = origins[ok]
            real = not s.name.startswith("synthetic/")
            n_val = int(len(origins) * VAL_FRACTION) if real else 0
            # validation origins: their targets lie after every training origin's targets
            cut = len(origins) - n_val
            tr, va = origins[: max(0, cut - HORIZON)], origins[cut:]
            w = 1.0 / math.sqrt(max(len(tr), 1))  # every series counts about sqrt(its size)
            self.train += [(base + o + 1, feat, w, sid) for o in tr]
            self.val += [(base + o + 1, feat, 1.0, sid) for o in va]
            self.names.append((s.name, s.step_s, len(b), len(tr), len(va)))
            offset += CONTEXT + len(b) + HORIZON
        self.big = np.concatenate(parts)
        self.train = np.array(self.train)
        self.val = np.array(self.val)
        p = self.train[:, 2]
        self.p = p / p.sum()

    def batch(self, rows: np.ndarray):
        """(z [B, CONTEXT], step [B, 1], target z [B, HORIZON] with NaN where missing)."""
        start = rows[:, 0].astype(np.int64)
        ctx = self.big[start[:, None] + np.arange(CONTEXT)]
        tgt = self.big[start[:, None] + CONTEXT + np.arange(HORIZON)]
        z, loc, scale = prepare_rows(ctx)
        tz = np.clip((tgt - loc) / scale, -50, 50).astype(np.float32)
        return torch.from_numpy(z), torch.from_numpy(rows[:, 1:2].astype(np.float32)), torch.from_numpy(tz)


def prepare_rows(ctx: np.ndarray):
    """layout.prepare's fill and normalization, vectorized over rows of block means:
    (z float32, loc [B, 1], scale [B, 1]). export.py checks it against layout.prepare."""
    ctx = fill_rows(ctx)
    loc = ctx.mean(axis=1, keepdims=True)
    std = np.sqrt(((ctx - loc) ** 2).mean(axis=1, keepdims=True))
    scale = np.maximum(np.maximum(std, 1e-4 * np.abs(ctx).mean(axis=1, keepdims=True)), 1e-9)
    return ((ctx - loc) / scale).astype(np.float32), loc, scale


def fill_rows(c: np.ndarray) -> np.ndarray:
    """Per row: NaN takes the previous finite value, leading NaN the first finite one."""
    fin = np.isfinite(c)
    idx = np.where(fin, np.arange(c.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    first = np.argmax(fin, axis=1)
    idx = np.where(fin.cumsum(axis=1) == 0, first[:, None], idx)
    return np.take_along_axis(c, idx, axis=1)


def lead_weights() -> torch.Tensor:
    w = 1.0 / torch.sqrt(torch.arange(1, HORIZON + 1, dtype=torch.float32))
    return w / w.mean()


def pinball(q: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss of [B, 3, H] quantiles against [B, H] targets (NaN masked)."""
    mask = torch.isfinite(y)
    y0 = torch.where(mask, y, torch.zeros_like(y))
    total = torch.zeros((), dtype=q.dtype)
    for i, a in enumerate(QUANTILES):
        d = y0 - q[:, i]
        total = total + (torch.maximum(a * d, (a - 1) * d) * w * mask).sum()
    return total / (mask.sum() * len(QUANTILES)).clamp(min=1)


@torch.no_grad()
def evaluate(model, win: Windows, rng: np.random.Generator, n: int = 8192) -> dict:
    model.eval()
    rows = win.val[rng.choice(len(win.val), size=min(n, len(win.val)), replace=False)]
    out = {"windows": int(len(rows))}
    z, st, y = win.batch(rows)
    q = torch.cat([model(z[i : i + 1024], st[i : i + 1024]) for i in range(0, len(z), 1024)])
    mask = torch.isfinite(y)
    last = z[:, -1:].expand_as(y)
    y0 = torch.where(mask, y, torch.zeros_like(y))
    for name, k in (("lead1", slice(0, 1)), ("leads1_3", slice(0, 3)), ("all", slice(0, HORIZON))):
        m = mask[:, k]
        mae = ((q[:, 1, k] - y0[:, k]).abs() * m).sum() / m.sum()
        naive = ((last[:, k] - y0[:, k]).abs() * m).sum() / m.sum()
        cov = (((q[:, 0, k] <= y0[:, k]) & (y0[:, k] <= q[:, 2, k])) & m).sum() / m.sum()
        out[name] = {"mae_rel_last_value": round(float(mae / naive), 4), "coverage_p10_p90": round(float(cov), 4)}
    out["pinball"] = round(float(pinball(q, y, torch.ones(HORIZON))), 5)
    model.train()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--out", type=Path, default=Path("data/transformer"))
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--synthetic", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu (the shipped model) or cuda (exploration)")
    ap.add_argument("--d-model", type=int, default=48)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    started = time.time()
    win = Windows(data.corpus(args.shared, args.synthetic, args.seed))
    print(f"{len(win.names)} series, {len(win.train)} training and {len(win.val)} validation origins", flush=True)

    dev = torch.device(args.device)
    arch = {"d": args.d_model, "heads": args.heads, "layers": args.layers, "ff": 2 * args.d_model}
    model = PatchForecaster(**arch).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))
    )
    w = lead_weights().to(dev)
    for step in range(args.steps):
        rows = win.train[rng.choice(len(win.train), size=args.batch, p=win.p)]
        z, st, y = (a.to(dev) for a in win.batch(rows))
        loss = pinball(model(z, st), y, w)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)

    model = model.cpu()
    metrics = evaluate(model, win, np.random.default_rng(args.seed + 1))
    seconds = time.time() - started
    print(json.dumps(metrics), f"{seconds:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "weights.pt")
    report = {
        "layout": LAYOUT,
        "arch": arch,
        "seed": args.seed,
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "threads": args.threads,
        "device": args.device,
        "torch": torch.__version__,
        "train_seconds": round(seconds),
        "parameters": sum(p.numel() for p in model.parameters()),
        "series": [
            {"name": n, "step_s": s, "model_steps": b, "train_origins": tr, "val_origins": va}
            for n, s, b, tr, va in win.names
        ],
        "validation": metrics,
    }
    (args.out / "training.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
