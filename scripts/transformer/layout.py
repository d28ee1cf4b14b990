"""The model's input layout and normalization (version LAYOUT): the one definition that
training, export and the reference fixtures use. The Rust side
(actors/src/forecast/transformer/layout.rs) implements the same steps and refuses a model
whose declared layout differs.

Input: a history on a regular grid ending at the origin (NaN = missing), the grid step in s.
1. Aggregation: agg = max(1, (300 + step // 2) // step) grid steps make one model step, so the
   model sees a step of about 5 minutes or more (1-minute series: 5-minute means).
2. Context: the last CONTEXT * agg grid points (missing ones in front when the history is
   shorter), block means of agg points over the finite values (NaN when none).
3. Fill: NaN takes the previous finite block; leading NaN the first finite block. No finite
   block: no forecast.
4. Normalization: loc = mean of the filled context, scale = max(population std,
   1e-4 * mean |x|, 1e-9); z = (x - loc) / scale, as float32.
5. The step input: log2(agg * step / 300), as float32.
Output: quantiles[b, q, j] (q = p10, p50, p90; j = 1..HORIZON model steps) in z units;
value = loc + scale * z. Grid lead k (1-based) reads model step ceil(k / agg). A flat context
(every value equal) gives the model nothing to read: the forecast is that value, no width.
"""

import math

import numpy as np

LAYOUT = "pscaler-patch-v1"
CONTEXT = 288
HORIZON = 24
PATCH = 12
QUANTILES = (0.1, 0.5, 0.9)


def agg_of(step_s: int) -> int:
    return max(1, (300 + step_s // 2) // step_s)


def step_feature(step_s: int) -> float:
    return math.log2(agg_of(step_s) * step_s / 300.0)


def blocks(x: np.ndarray, agg: int, count: int) -> np.ndarray:
    """The last `count` block means of `agg` points of x (NaN in front where x is short)."""
    need = count * agg
    if len(x) >= need:
        w = x[len(x) - need :]
    else:
        w = np.concatenate([np.full(need - len(x), np.nan), x])
    w = w.reshape(count, agg)
    fin = np.isfinite(w)
    n = fin.sum(axis=1)
    s = np.where(fin, w, 0.0)
    # sequential sum in index order, as the Rust side does
    tot = np.zeros(count)
    for j in range(agg):
        tot = tot + s[:, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, tot / np.maximum(n, 1), np.nan)


def fill(b: np.ndarray) -> np.ndarray | None:
    fin = np.isfinite(b)
    if not fin.any():
        return None
    out = b.copy()
    first = int(np.argmax(fin))
    out[:first] = out[first]
    for i in range(first + 1, len(out)):
        if not np.isfinite(out[i]):
            out[i] = out[i - 1]
    return out


def seq_mean(v: np.ndarray) -> float:
    s = 0.0
    for a in v.tolist():
        s += a
    return s / len(v)


def normalize(c: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(z as float32, loc, scale) of a filled context, sums in index order (as in Rust)."""
    loc = seq_mean(c)
    var = seq_mean((c - loc) ** 2)
    mabs = seq_mean(np.abs(c))
    scale = max(math.sqrt(var), 1e-4 * mabs, 1e-9)
    return ((c - loc) / scale).astype(np.float32), loc, scale


def prepare(x: np.ndarray, step_s: int):
    """(z [CONTEXT] float32, step feature, loc, scale, flat) or None when nothing is finite."""
    agg = agg_of(step_s)
    c = fill(blocks(np.asarray(x, dtype=np.float64), agg, CONTEXT))
    if c is None:
        return None
    z, loc, scale = normalize(c)
    return z, np.float32(step_feature(step_s)), loc, scale, bool((c == c[0]).all())


def to_leads(q: np.ndarray, loc: float, scale: float, step_s: int, horizon: int, flat: bool = False) -> np.ndarray:
    """[3, HORIZON] model outputs (z units) -> [3, leads] values for grid leads 1..horizon
    (at most HORIZON * agg)."""
    agg = agg_of(step_s)
    lead = np.arange(1, horizon + 1)
    j = (lead + agg - 1) // agg - 1
    if flat:
        return np.full((3, horizon), loc)
    return loc + scale * q[:, j].astype(np.float64)


def reach(step_s: int) -> int:
    """Grid leads the model covers."""
    return HORIZON * agg_of(step_s)
