#!/usr/bin/python3
"""Exports the ONNX models of the peer comparison (bench/peers/compare.py) into a folder.

Models (float32, batch 1, static shapes, opset 17, eval mode so dropout is off, fixed seed):
  encoder_s128, encoder_s512  BERT-base encoder layer: d 768, 12 heads, FFN 3072, GELU (erf), post-LN
                              (eps 1e-12). A plain module with separate q/k/v Linear layers and
                              softmax(Q·Kᵀ/8)·V spelled out, so ONNX Runtime's optimizer can fuse it.
                              x [1, S, 768] -> y [1, S, 768].
  attention_core              softmax(q·kᵀ/8)·v; q, k, v [1, 12, 512, 64] -> y [1, 12, 512, 64].
  swiglu_mlp                  Llama-style SwiGLU MLP without biases, down(silu(gate(x)) * up(x)),
                              768 -> 3072 -> 768; x [128, 768] -> y [128, 768].

Writes DIR/<name>.onnx and DIR/models.json ({name: {"file", "inputs": {name: shape}, "description"}}).
Needs Debian's python3-torch (1.13) and python3-onnx (1.12).

Usage:  /usr/bin/python3 bench/peers/make_models.py [--out DIR]    (default: bench/peers/models)
"""

import argparse
import json
import os

import onnx
import torch
from torch import nn

OPSET = 17
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


def models():
    """(name, module factory, {input: shape}, description) for every model."""
    out = []
    for seq in (128, 512):
        out.append((f"encoder_s{seq}", lambda seq=seq: EncoderLayer(seq), {"x": [1, seq, D_MODEL]},
                    f"BERT-base encoder layer (d 768, 12 heads, FFN 3072, GELU erf, post-LN), seq {seq}"))
    qkv = [1, HEADS, 512, HEAD_DIM]
    out.append(("attention_core", AttentionCore, {"q": qkv, "k": qkv, "v": qkv},
                "attention core softmax(q·kᵀ/8)·v, 12 heads, seq 512, head dim 64"))
    out.append(("swiglu_mlp", SwiGLU, {"x": [128, D_MODEL]}, "SwiGLU MLP 768->3072->768, 128 rows"))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {}
    for name, make, inputs, description in models():
        torch.manual_seed(SEED)  # PyTorch's default initialisation, from a fixed seed
        module = make().eval()
        path = os.path.join(args.out, name + ".onnx")
        example = tuple(torch.rand(*shape) * 2 - 1 for shape in inputs.values())
        torch.onnx.export(module, example, path, opset_version=OPSET, input_names=list(inputs), output_names=["y"],
                          do_constant_folding=True)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        manifest[name] = {"file": name + ".onnx", "inputs": inputs, "description": description}
        print(f"{name}: {path}")
    with open(os.path.join(args.out, "models.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
