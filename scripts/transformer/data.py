"""The training corpus: real traces from shared/data, each cut before its evaluation region,
plus seeded synthetic series. Nothing from shared/data is written into the repository."""

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from layout import agg_of

TEST_FRACTION = 0.2  # PROTOCOL.md: the last 20 % of every series is its test region
MAX_FILL_STEPS = 3  # the Rust grid interpolates gaps of at most 3 steps
MAX_STEP_S = 3600  # daily and monthly series are no use for 15 min - 2 h forecasts

# dev-panel series and the upstream files they were made from (used only through the panel)
PANEL_SOURCES = {
    "nab/realKnownCause/nyc_taxi.csv",
    "nab/realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "nab/realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "nab/realAWSCloudwatch/elb_request_count_8c0756.csv",
    "nab/realTweets/Twitter_volume_AAPL.csv",
    "nab/realTweets/Twitter_volume_IBM.csv",
}
PANEL_COLUMNS = {  # (file, column) pairs that are panel series
    ("DataCenter-Traces-Datasets/google2019/instance_usage_grouped_300_seconds_month.csv", "avg_cpu"),
    ("DataCenter-Traces-Datasets/azure_v2/vm_cpu_readings_month_aggregated_cpu_mem.csv", "cpu_usage"),
    ("time-series-forcasting-benchmark-dataset-preprocessing/processeddata/nasa/requestdata-20240626.csv", "count"),
}


@dataclass
class Train:
    name: str
    t: np.ndarray  # int64 epoch seconds
    y: np.ndarray  # float64
    step_s: int


def parse_time(text: str) -> int:
    text = text.strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def cut(name: str, t: np.ndarray, y: np.ndarray) -> Train:
    """The points up to and including the last training point (PROTOCOL.md's train_end)."""
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    n = len(t)
    end = n - int(math.floor(TEST_FRACTION * n)) - 1
    step = int(np.median(np.diff(t)))
    return Train(name, t[: end + 1], y[: end + 1], step)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    return [h.strip() for h in rows[0]], rows[1:]


def panel(shared: Path) -> list[Train]:
    out = []
    for p in sorted((shared / "data" / "panel").glob("*.csv")):
        head, rows = read_csv(p)
        low = [h.lower() for h in head]
        ti = next(i for i, h in enumerate(low) if h in ("timestamp", "ds", "time", "date"))
        vi = next(i for i, h in enumerate(low) if h in ("value", "y"))
        t = np.array([parse_time(r[ti]) for r in rows], dtype=np.int64)
        y = np.array([float(r[vi]) for r in rows], dtype=np.float64)
        out.append(cut("panel/" + p.stem, t, y))
    return out


def others(shared: Path) -> list[Train]:
    """Every other series of INDEX.json at a step of at most an hour, every value column."""
    index = json.loads((shared / "data" / "INDEX.json").read_text())
    out = []
    for s in index["series"]:
        if s["path"] in PANEL_SOURCES or s["step_s"] > MAX_STEP_S:
            continue
        head, rows = read_csv(shared / "data" / s["path"])
        if s["time_col"] is None:
            t = np.arange(len(rows), dtype=np.int64) * int(s["step_s"])
        else:
            ti = head.index(s["time_col"])
            t = np.array([parse_time(r[ti]) for r in rows], dtype=np.int64)
        for col in s["value_cols"]:
            if (s["path"], col) in PANEL_COLUMNS:
                continue
            vi = head.index(col)
            y = np.array([float(r[vi]) if r[vi].strip() else np.nan for r in rows], dtype=np.float64)
            out.append(cut(f"{s['path']}:{col}", t, y))
    return out


def synthetic(seed: int, count: int) -> list[Train]:
    """Load-like series: daily and weekly cycles, trends, level shifts, spikes, noise of
    several kinds, at 1, 5, 10 and 30 minute steps."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        step = int(rng.choice([60, 300, 300, 300, 600, 1800]))
        days = 12 if step == 60 else 24
        n = days * 86400 // step
        tt = np.arange(n) * step
        ph = tt % 86400 / 86400 * 2 * np.pi
        wk = tt % 604800 / 604800 * 2 * np.pi
        level = 10 ** rng.uniform(0, 6)
        shape = (
            rng.uniform(0, 0.6) * np.sin(ph + rng.uniform(0, 6.3))
            + rng.uniform(0, 0.2) * np.sin(2 * ph + rng.uniform(0, 6.3))
            + rng.uniform(0, 0.2) * np.cos(wk)
        )
        ar = np.zeros(n)
        e = rng.normal(0, rng.uniform(0.005, 0.1), n)
        phi = rng.uniform(0.0, 0.98)
        for k in range(1, n):
            ar[k] = phi * ar[k - 1] + e[k]
        trend = rng.uniform(-0.3, 0.3) * tt / tt[-1]
        shifts = np.zeros(n)
        for _ in range(rng.integers(0, 4)):
            shifts[rng.integers(0, n) :] += rng.normal(0, 0.2)
        y = level * np.maximum(0.0, 1 + shape + ar + trend + shifts)
        spikes = rng.random(n) < rng.uniform(0, 0.01)
        y[spikes] *= rng.uniform(1.5, 4, spikes.sum())
        if rng.random() < 0.3:  # counts
            y = rng.poisson(y / level * rng.uniform(3, 200)).astype(np.float64)
        out.append(Train(f"synthetic/{i}", 1_400_000_000 + tt.astype(np.int64), y, step))
    return out


def regularize(s: Train) -> np.ndarray:
    """The series on its regular grid (NaN where missing; gaps of up to MAX_FILL_STEPS steps
    interpolated; a repeated grid point keeps the later value), as the Rust grid does."""
    step = s.step_s
    t_last = int(s.t[-1])
    n = (t_last - int(s.t[0])) // step + 1
    x = np.full(n, np.nan)
    for ti, yi in zip(s.t.tolist(), s.y.tolist()):
        if not math.isfinite(yi):
            continue
        back = (t_last - ti + step // 2) // step
        if 0 <= back < n:
            x[n - 1 - back] = yi
    i = 0
    while i < n:
        if np.isnan(x[i]):
            j = i
            while j < n and np.isnan(x[j]):
                j += 1
            if i > 0 and j < n and j - i <= MAX_FILL_STEPS:
                a, b = x[i - 1], x[j]
                gap = j - i + 1
                for m in range(i, j):
                    x[m] = a + (b - a) * (m - i + 1) / gap
            i = j
        else:
            i += 1
    return x


def block_series(x: np.ndarray, step_s: int) -> np.ndarray:
    """Block means of agg grid points, blocks ending at the last point (model steps)."""
    agg = agg_of(step_s)
    n = len(x) // agg
    w = x[len(x) - n * agg :].reshape(n, agg)
    fin = np.isfinite(w)
    cnt = fin.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, np.where(fin, w, 0.0).sum(axis=1) / np.maximum(cnt, 1), np.nan)


def corpus(shared: Path, synthetic_count: int, seed: int) -> list[Train]:
    series = panel(shared) + others(shared) + synthetic(seed, synthetic_count)
    return [s for s in series if len(s.t) > 300]
