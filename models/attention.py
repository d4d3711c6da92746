"""Multi-head scaled dot-product attention over already projected queries, keys and values,
through ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on GPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int,
                         causal: bool = False, scale: float | None = None, bias: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """``[B, L, H*d]`` query, ``[B, S, H*d]`` key/value -> ``[B, L, H*d]``, heads side by side.
    ``scale``: of the logits; None = 1/sqrt(d), SDPA's default. ``bias`` ``[L, S]``: added to
    the scaled logits (-inf masks a pair out)."""
    heads = lambda t: t.unflatten(-1, (num_heads, -1)).transpose(1, 2)  # noqa: E731
    out = F.scaled_dot_product_attention(heads(query), heads(key), heads(value), attn_mask=bias, is_causal=causal,
                                         scale=scale)
    return out.transpose(1, 2).flatten(2)
