"""The PyTorch modules behind the peer comparison's models, shared by make_models.py and torch_run.py.

Every model is built by build(name): PyTorch's default initialisation from a fixed seed, eval mode (no
dropout). make_models.py exports it to ONNX and saves its state_dict beside the ONNX file, and
torch_run.py loads that state_dict into a module from the same build(name), so the PyTorch peer runs
exactly the weights the ONNX file holds.

Models (float32, batch 1, static shapes):
  encoder_s128, encoder_s512  BERT-base encoder layer: d 768, 12 heads, FFN 3072, GELU (erf), post-LN
                              (eps 1e-12). A plain module with separate q/k/v Linear layers and
                              softmax(Q·Kᵀ/8)·V spelled out, so ONNX Runtime's optimizer can fuse it.
                              x [1, S, 768] -> y [1, S, 768].
  attention_core              softmax(q·kᵀ/8)·v; q, k, v [1, 12, 512, 64] -> y [1, 12, 512, 64].
  swiglu_mlp                  Llama-style SwiGLU MLP without biases, down(silu(gate(x)) * up(x)),
                              768 -> 3072 -> 768; x [128, 768] -> y [128, 768].
"""

import collections

import torch
from torch import nn

SEED = 20240601
D_MODEL, HEADS, HEAD_DIM, FFN = 768, 12, 64, 3072


class EncoderLayer(nn.Module):
    """BERT-base encoder layer, post-LN, without attention mask."""

    def __init__(self, seq):
        super().__init__()
        self.seq = seq
        self.query = nn.Linear(D_MODEL, D_MODEL)
        self.key = nn.Linear(D_MODEL, D_MODEL)
        self.value = nn.Linear(D_MODEL, D_MODEL)
        self.attn_out = nn.Linear(D_MODEL, D_MODEL)
        self.attn_norm = nn.LayerNorm(D_MODEL, eps=1e-12)
        self.ffn_in = nn.Linear(D_MODEL, FFN)
        self.act = nn.GELU()  # exact (erf) form
        self.ffn_out = nn.Linear(FFN, D_MODEL)
        self.ffn_norm = nn.LayerNorm(D_MODEL, eps=1e-12)

    def heads(self, t):  # [1, S, 768] -> [1, 12, S, 64]
        return t.view(1, self.seq, HEADS, HEAD_DIM).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / 8.0, dim=-1)
        a = torch.matmul(p, v).transpose(1, 2).reshape(1, self.seq, D_MODEL)
        h = self.attn_norm(x + self.attn_out(a))
        return self.ffn_norm(h + self.ffn_out(self.act(self.ffn_in(h))))


class AttentionCore(nn.Module):
    def forward(self, q, k, v):
        return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / 8.0, dim=-1), v)


class SwiGLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(D_MODEL, FFN, bias=False)
        self.up = nn.Linear(D_MODEL, FFN, bias=False)
        self.down = nn.Linear(FFN, D_MODEL, bias=False)

    def forward(self, x):
        return self.down(nn.functional.silu(self.gate(x)) * self.up(x))


# factory: builds the module; inputs: {name: shape} in forward()'s argument order; outputs: ONNX output names.
Spec = collections.namedtuple("Spec", "factory inputs outputs description")


def _specs():
    specs = {}
    for seq in (128, 512):
        specs[f"encoder_s{seq}"] = Spec(
            lambda seq=seq: EncoderLayer(seq), {"x": [1, seq, D_MODEL]}, ["y"],
            f"BERT-base encoder layer (d 768, 12 heads, FFN 3072, GELU erf, post-LN), seq {seq}")
    qkv = [1, HEADS, 512, HEAD_DIM]
    specs["attention_core"] = Spec(AttentionCore, {"q": qkv, "k": qkv, "v": qkv}, ["y"],
                                   "attention core softmax(q·kᵀ/8)·v, 12 heads, seq 512, head dim 64")
    specs["swiglu_mlp"] = Spec(SwiGLU, {"x": [128, D_MODEL]}, ["y"], "SwiGLU MLP 768->3072->768, 128 rows")
    return specs


SPECS = _specs()


def build(name):
    """The model's module in eval mode, with PyTorch's default initialisation from SEED."""
    if name not in SPECS:
        raise KeyError(f"unknown model '{name}' (models: {', '.join(SPECS)})")
    torch.manual_seed(SEED)
    return SPECS[name].factory().eval()
