"""The patch-based encoder: the context cut into patches, each patch a token, a small
transformer encoder over the tokens, and one linear head that gives p10/p50/p90 for every
model step of the horizon (p50 relative to the last context value, p10/p90 as positive
distances below/above p50, so the quantiles never cross)."""

import torch
from torch import nn

from layout import CONTEXT, HORIZON, PATCH


class Block(nn.Module):
    """Pre-norm encoder layer with plain attention (exports to ONNX without fused kernels)."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.n1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.n2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.n1(x)).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (hd**-0.5), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.ff(self.n2(x)))


class PatchForecaster(nn.Module):
    def __init__(self, d: int = 64, heads: int = 4, layers: int = 3, ff: int = 128, dropout: float = 0.1):
        super().__init__()
        self.tokens = CONTEXT // PATCH
        self.embed = nn.Linear(PATCH, d)
        self.pos = nn.Parameter(torch.zeros(1, self.tokens, d))
        self.step = nn.Linear(1, d)
        self.blocks = nn.ModuleList([Block(d, heads, ff, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(self.tokens * d, 3 * HORIZON)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, context: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """context [B, CONTEXT] (normalized), step [B, 1] -> quantiles [B, 3, HORIZON]."""
        b = context.shape[0]
        x = self.embed(context.reshape(b, self.tokens, PATCH)) + self.pos + self.step(step).unsqueeze(1)
        for blk in self.blocks:
            x = blk(x)
        out = self.head(self.norm(x).reshape(b, -1)).reshape(b, 3, HORIZON)
        p50 = context[:, -1:] + out[:, 1]
        lo = p50 - nn.functional.softplus(out[:, 0] - 1.0)
        hi = p50 + nn.functional.softplus(out[:, 2] - 1.0)
        return torch.stack([lo, p50, hi], dim=1)
