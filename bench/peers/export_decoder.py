#!/usr/bin/python3
"""Exports the prefill of a Llama-architecture checkpoint directory to ONNX, for timing ONNX Runtime beside
`quarks-bench --model DIR --prompt-tokens S` on the same weights (no transformers needed):

  /usr/bin/python3 bench/peers/export_decoder.py /tmp/llama-3.2-1b --seq 512 --out /tmp/llama-onnx

writes OUT/model.onnx (weights as external data next to it: a 1B model is over protobuf's 2 GB) and
OUT/input_ids.npy. The graph is one prompt of S tokens into empty caches, f32, as Hugging Face's eager
LlamaForCausalLM computes it (RMSNorm, rotate-half RoPE with the config's llama3 rope_scaling, causal GQA
softmax attention, SwiGLU MLP), with logits of the last position only — what quarks-bench's pp rows
compute. bf16 checkpoints are widened to f32, so both engines run f32 products on the same numbers.
Then:

  node bench/peers/ort_run.js OUT/model.onnx --input input_ids=OUT/input_ids.npy --threads 1 --warmup 1 --iters 3
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "models"))
import make_checkpoints  # noqa: E402  (the float64 reference's inv_freq: llama3 rope_scaling)

torch.set_default_dtype(torch.float32)  # make_checkpoints sets float64 for its reference

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(folder):
    """name -> f32 tensor, from model.safetensors or the shards of model.safetensors.index.json."""
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        for key, t in header.items():
            if key == "__metadata__":
                continue
            begin, end = t["data_offsets"]
            raw = torch.frombuffer(bytearray(data[8 + n + begin:8 + n + end]), dtype=DTYPES[t["dtype"]])
            out[key] = raw.reshape(t["shape"]).float()
    return out


class LlamaPrefill(torch.nn.Module):
    def __init__(self, cfg, w, seq):
        super().__init__()
        self.d, self.h = cfg["hidden_size"], cfg["num_attention_heads"]
        self.hkv = cfg.get("num_key_value_heads", self.h)
        self.hd = cfg.get("head_dim", self.d // self.h)
        self.eps = cfg["rms_norm_eps"]
        self.layers = cfg["num_hidden_layers"]
        keep = lambda t: torch.nn.Parameter(t, requires_grad=False)  # noqa: E731
        self.params = torch.nn.ParameterDict({k.replace(".", "_"): keep(v) for k, v in w.items()})
        self.tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in w
        f = make_checkpoints.inv_freq(cfg, self.hd)  # float64, as Hugging Face computes it before casting
        ang = torch.arange(seq, dtype=torch.float64)[:, None] * f[None, :]
        self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1).float())
        self.register_buffer("sin", torch.cat([ang.sin(), ang.sin()], -1).float())
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

    def w(self, name):
        return self.params[name.replace(".", "_")]

    def rms(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w(name)

    def rope(self, x):  # [H, S, D]
        half = self.hd // 2
        return x * self.cos + torch.cat([-x[..., half:], x[..., :half]], -1) * self.sin

    def forward(self, input_ids):  # [1, S] -> logits [1, 1, vocab] of the last position
        s = input_ids.shape[1]
        x = torch.nn.functional.embedding(input_ids[0], self.w("model.embed_tokens.weight"))
        rep = self.h // self.hkv
        lin = torch.nn.functional.linear
        for i in range(self.layers):
            p = f"model.layers.{i}."
            a = self.rms(x, p + "input_layernorm.weight")
            q = lin(a, self.w(p + "self_attn.q_proj.weight")).reshape(s, self.h, self.hd).transpose(0, 1)
            k = lin(a, self.w(p + "self_attn.k_proj.weight")).reshape(s, self.hkv, self.hd).transpose(0, 1)
            v = lin(a, self.w(p + "self_attn.v_proj.weight")).reshape(s, self.hkv, self.hd).transpose(0, 1)
            q, k = self.rope(q), self.rope(k)
            k = k[:, None].expand(self.hkv, rep, s, self.hd).reshape(self.h, s, self.hd)  # HF repeat_kv
            v = v[:, None].expand(self.hkv, rep, s, self.hd).reshape(self.h, s, self.hd)
            scores = q @ k.transpose(1, 2) / math.sqrt(self.hd) + self.mask
            o = (scores.softmax(-1) @ v).transpose(0, 1).reshape(s, self.h * self.hd)
            x = x + lin(o, self.w(p + "self_attn.o_proj.weight"))
            m = self.rms(x, p + "post_attention_layernorm.weight")
            g = torch.nn.functional.silu(lin(m, self.w(p + "mlp.gate_proj.weight"))) * lin(m, self.w(p + "mlp.up_proj.weight"))
            x = x + lin(g, self.w(p + "mlp.down_proj.weight"))
        last = self.rms(x[s - 1:], "model.norm.weight")
        head = self.w("model.embed_tokens.weight" if self.tied else "lm_head.weight")
        return lin(last, head)[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    if cfg.get("architectures") != ["LlamaForCausalLM"]:
        sys.exit(f"export_decoder: {a.model_dir}: only LlamaForCausalLM is exported, not {cfg.get('architectures')}")
    model = LlamaPrefill(cfg, read_safetensors(a.model_dir), a.seq).eval()
    os.makedirs(a.out, exist_ok=True)
    ids = torch.randint(0, cfg["vocab_size"], (1, a.seq), generator=torch.Generator().manual_seed(42))
    np.save(os.path.join(a.out, "input_ids.npy"), ids.numpy())
    with torch.inference_mode():
        torch.onnx.export(model, (ids,), os.path.join(a.out, "model.onnx"), opset_version=17,
                          input_names=["input_ids"], output_names=["logits"], do_constant_folding=False)
    print(f"{a.out}/model.onnx: {cfg['num_hidden_layers']} layers, prompt of {a.seq} tokens, f32")


if __name__ == "__main__":
    main()
