#!/usr/bin/python3
"""Regenerates the PyTorch fixtures of the attention-block tests (tests/blocks/data/).

Each case is a small module with fixed-seed float32 parameters and inputs; its reference outputs are
computed in float64 (the module and inputs converted with .double(), so the reference sees exactly the
float32 values quarks gets) in eval mode with dropout 0, and saved as float64. Parameters are saved under
their PyTorch state_dict names in PyTorch's layout (nn.Linear weight [out, in]; MultiheadAttention
in_proj_weight [3d, d]): the C++ tests do the conversion to quarks' [in, out] layout, as a user would.

Cases (d 64, 4 heads, FFN 128, seq 9, batch 2):
  mha/      nn.MultiheadAttention(batch_first=True): no mask; key_padding_mask (padding at the end, also
            saved as key_lengths); an additive float attn_mask [S, S]; both masks.
  encoder/  nn.TransformerEncoderLayer(batch_first=True, dropout=0): norm_first False and True x relu and
            gelu, each without and with src_key_padding_mask.
  gpt/      a causal GPT-style block in plain torch: pre-LN, fused qkv Linear, causal softmax attention,
            GELU-tanh MLP.
  gpt_gqa_gated/  the same block with grouped-query attention (2 kv heads) and a per-head output gate
            sigmoid(ln1(x)·W_g + b_g) on each head's attention output before the projection.

The reference path is forced off PyTorch's fused "fast path" (autograd stays enabled) so the math is the
documented composition of Linear, softmax and LayerNorm.

Usage (from the repository root):  /usr/bin/python3 tests/blocks/make_block_fixtures.py
"""

import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")

D_MODEL, HEADS, FFN, SEQ, BATCH = 64, 4, 128, 9, 2
KEY_LENGTHS = [SEQ, 6]  # batch 1 has 3 padded keys at the end


def randomize_(module, seed):
    """Deterministic non-trivial values for every parameter (norm scales and biases included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
            elif "norm" in name or name.startswith("ln"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen) if name.endswith("weight") else
                        0.1 * torch.randn(p.shape, generator=gen))
            else:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return module


def randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def save(folder, name, array):
    os.makedirs(folder, exist_ok=True)
    if isinstance(array, torch.Tensor):
        array = array.detach().numpy()
    np.save(os.path.join(folder, name + ".npy"), array)


def save_params(folder, module):
    for name, p in module.state_dict().items():
        save(folder, name, p.to(torch.float32))


def padding_mask():
    """key_padding_mask [B, S]: True hides a key (positions >= KEY_LENGTHS[b])."""
    return torch.arange(SEQ)[None, :] >= torch.tensor(KEY_LENGTHS)[:, None]


# ---------------------------------------------------------------------------------------------------


def make_mha():
    folder = os.path.join(DATA, "mha")
    mha = randomize_(nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True), 1).eval()
    x = randn(2, BATCH, SEQ, D_MODEL)
    attn_mask = 0.5 * randn(3, SEQ, SEQ)
    attn_mask[attn_mask < -0.6] = -math.inf  # scattered hidden keys (no row is fully hidden: checked below)
    assert torch.isfinite(attn_mask).any(dim=1).all()
    save_params(folder, mha)
    save(folder, "x", x)
    save(folder, "key_lengths", np.array(KEY_LENGTHS, dtype=np.int64))
    save(folder, "attn_mask", attn_mask)
    ref = mha.double()
    xd = x.double()

    def run(**kw):
        return ref(xd, xd, xd, need_weights=False, **kw)[0]

    save(folder, "y", run())
    save(folder, "y_key_padding", run(key_padding_mask=padding_mask()))
    save(folder, "y_attn_mask", run(attn_mask=attn_mask.double()))
    save(folder, "y_attn_mask_key_padding", run(attn_mask=attn_mask.double(), key_padding_mask=padding_mask()))


def make_encoder():
    folder = os.path.join(DATA, "encoder")
    x = randn(11, BATCH, SEQ, D_MODEL)
    save(folder, "x", x)
    save(folder, "key_lengths", np.array(KEY_LENGTHS, dtype=np.int64))
    params = None
    for norm_first in (False, True):
        for activation in ("relu", "gelu"):
            layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, dim_feedforward=FFN, dropout=0.0,
                                               activation=activation, batch_first=True, norm_first=norm_first)
            randomize_(layer, 10).eval()  # the same parameters for all four variants
            if params is None:
                params = layer.state_dict()
                save_params(folder, layer)
            assert all(torch.equal(params[k], v) for k, v in layer.state_dict().items())
            ref = layer.double()
            tag = ("pre" if norm_first else "post") + "_" + activation
            save(folder, "y_" + tag, ref(x.double()))
            save(folder, "y_" + tag + "_key_padding", ref(x.double(), src_key_padding_mask=padding_mask()))


class GptBlock(nn.Module):
    """Pre-LN causal block: h = x + Attn(LN1(x)); y = h + FC2(gelu_tanh(FC1(LN2(h))))."""

    def __init__(self, kv_heads=HEADS, gated=False):
        super().__init__()
        self.kv_heads, self.head_dim = kv_heads, D_MODEL // HEADS
        self.ln1 = nn.LayerNorm(D_MODEL)
        self.qkv = nn.Linear(D_MODEL, (HEADS + 2 * kv_heads) * self.head_dim)
        self.gate = nn.Linear(D_MODEL, HEADS) if gated else None
        self.proj = nn.Linear(D_MODEL, D_MODEL)
        self.ln2 = nn.LayerNorm(D_MODEL)
        self.fc1 = nn.Linear(D_MODEL, FFN)
        self.fc2 = nn.Linear(FFN, D_MODEL)

    def attention(self, x):
        b, s, _ = x.shape
        dh = self.head_dim
        q, k, v = self.qkv(x).split([HEADS * dh, self.kv_heads * dh, self.kv_heads * dh], dim=-1)
        q = q.view(b, s, HEADS, dh).transpose(1, 2)
        k = k.view(b, s, self.kv_heads, dh).transpose(1, 2).repeat_interleave(HEADS // self.kv_heads, dim=1)
        v = v.view(b, s, self.kv_heads, dh).transpose(1, 2).repeat_interleave(HEADS // self.kv_heads, dim=1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
        causal = torch.ones(s, s, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, -math.inf)
        a = torch.softmax(scores, dim=-1) @ v  # [B, H, S, D]
        if self.gate is not None:
            a = a * torch.sigmoid(self.gate(x)).transpose(1, 2).unsqueeze(-1)
        return self.proj(a.transpose(1, 2).reshape(b, s, HEADS * dh))

    def forward(self, x):
        h = x + self.attention(self.ln1(x))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h)), approximate="tanh"))


def make_gpt(name, seed, **kw):
    folder = os.path.join(DATA, name)
    block = randomize_(GptBlock(**kw), seed).eval()
    x = randn(seed + 1, BATCH, SEQ, D_MODEL)
    save_params(folder, block)
    save(folder, "x", x)
    save(folder, "y", block.double()(x.double()))


def main():
    shutil.rmtree(DATA, ignore_errors=True)
    make_mha()
    make_encoder()
    make_gpt("gpt", 20)
    make_gpt("gpt_gqa_gated", 30, kv_heads=2, gated=True)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(DATA) for f in fs)
    print(f"wrote {DATA} ({total} bytes)")


if __name__ == "__main__":
    main()
