#!/usr/bin/python3
"""Regenerates the Llama decoder layer fixtures in fixtures/llama_layer/ for decoder_block_test.cc.

A Llama-style decoder layer in plain torch, written from the HF Llama definitions (no quarks code):
RMSNorm, q/k/v projections, rotate-half RoPE, grouped-query attention by repeat_interleave of the kv
heads, causal softmax attention, output projection and residual, RMSNorm, SwiGLU MLP and residual.
Sizes: d 64, 4 heads, 2 kv heads (head_dim 16), ffn 176, seq 7, batch 2; rope theta 10000, eps 1e-6.

Weights and inputs are drawn in float32 with a fixed seed; the layer is then evaluated in float64 on those
float32 values, so y.npy is the exact output of the float32 weights (to ~1e-15), saved as float64.
Linear weights are saved transposed, [in, out], as GraphBuilder::dense takes them.

Usage (from the repository root):  /usr/bin/python3 tests/blocks/make_llama_fixtures.py
"""

import math
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "llama_layer")

D, HEADS, KV_HEADS, FFN, SEQ, BATCH = 64, 4, 2, 176, 7, 2
HEAD_DIM = D // HEADS
THETA, EPS = 10000.0, 1e-6


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions):
    """x [B, H, S, D]; HF LlamaRotaryEmbedding + apply_rotary_pos_emb (computed in x's dtype, float64)."""
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM))
    freqs = torch.outer(positions.to(torch.float64), inv_freq)  # [S, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [S, D]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def llama_layer(x, p):
    b, s, _ = x.shape
    h = rms_norm(x, p["attn_norm"])
    q = (h @ p["wq"]).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)  # [B, H, S, D]
    k = (h @ p["wk"]).view(b, s, KV_HEADS, HEAD_DIM).transpose(1, 2)
    v = (h @ p["wv"]).view(b, s, KV_HEADS, HEAD_DIM).transpose(1, 2)
    positions = torch.arange(s)
    q, k = rope(q, positions), rope(k, positions)
    k = k.repeat_interleave(HEADS // KV_HEADS, dim=1)  # query head h reads kv head h // (H / Hkv)
    v = v.repeat_interleave(HEADS // KV_HEADS, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(HEAD_DIM)
    causal = torch.ones(s, s, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    attn = torch.softmax(scores, dim=-1) @ v  # [B, H, S, D]
    attn = attn.transpose(1, 2).reshape(b, s, HEADS * HEAD_DIM)
    x1 = x + attn @ p["wo"]
    h2 = rms_norm(x1, p["mlp_norm"])
    mlp = (torch.nn.functional.silu(h2 @ p["w_gate"]) * (h2 @ p["w_up"])) @ p["w_down"]
    return x1 + mlp


def main():
    gen = torch.Generator().manual_seed(20240611)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(torch.float32)

    # nn.Linear-style [in, out] matrices scaled by 1/sqrt(in); norm scales around 1.
    p = {
        "attn_norm": 1.0 + randn(D, scale=0.1),
        "wq": randn(D, HEADS * HEAD_DIM, scale=1 / math.sqrt(D)),
        "wk": randn(D, KV_HEADS * HEAD_DIM, scale=1 / math.sqrt(D)),
        "wv": randn(D, KV_HEADS * HEAD_DIM, scale=1 / math.sqrt(D)),
        "wo": randn(HEADS * HEAD_DIM, D, scale=1 / math.sqrt(D)),
        "mlp_norm": 1.0 + randn(D, scale=0.1),
        "w_gate": randn(D, FFN, scale=1 / math.sqrt(D)),
        "w_up": randn(D, FFN, scale=1 / math.sqrt(D)),
        "w_down": randn(FFN, D, scale=1 / math.sqrt(FFN)),
    }
    x = randn(BATCH, SEQ, D)
    with torch.no_grad():
        y = llama_layer(x.to(torch.float64), {k: v.to(torch.float64) for k, v in p.items()})
    os.makedirs(OUT, exist_ok=True)
    for name, t in p.items():
        np.save(os.path.join(OUT, name + ".npy"), t.numpy())
    np.save(os.path.join(OUT, "x.npy"), x.numpy())
    np.save(os.path.join(OUT, "y.npy"), y.numpy())
    print("wrote", OUT, "y max abs", float(y.abs().max()))


if __name__ == "__main__":
    main()
