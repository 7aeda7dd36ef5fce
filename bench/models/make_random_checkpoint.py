#!/usr/bin/python3
"""Writes a random-weight Hugging Face checkpoint of a real model's shape, for benchmarks (not tests):
config.json, generation_config.json and model.safetensors in bf16 (or f32), the tensor names and
layouts of the architecture. Weights are N(0, 1/fan_in), norms 1: the numbers are meaningless, the
shapes, bytes and work are the real model's. Nothing here is committed but this script.

  /usr/bin/python3 bench/models/make_random_checkpoint.py llama-3.2-1b /tmp/llama-3.2-1b [--dtype f32]
"""
import argparse
import json
import math
import os
import struct

import torch

SHAPES = {
    # Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B), weights omitted.
    "llama-3.2-1b": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
        "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "hidden_act": "silu",
        "rope_theta": 500000.0, "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192}},
}


def tensors(cfg):
    d, ffn, h, hkv = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", d // h)
    yield "model.embed_tokens.weight", (cfg["vocab_size"], d), d
    yield "model.norm.weight", (d,), 0
    if not cfg.get("tie_word_embeddings"):
        yield "lm_head.weight", (cfg["vocab_size"], d), d
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (d,), 0
        yield p + "post_attention_layernorm.weight", (d,), 0
        yield p + "self_attn.q_proj.weight", (h * hd, d), d
        yield p + "self_attn.k_proj.weight", (hkv * hd, d), d
        yield p + "self_attn.v_proj.weight", (hkv * hd, d), d
        yield p + "self_attn.o_proj.weight", (d, h * hd), h * hd
        yield p + "mlp.gate_proj.weight", (ffn, d), d
        yield p + "mlp.up_proj.weight", (ffn, d), d
        yield p + "mlp.down_proj.weight", (d, ffn), ffn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    a = ap.parse_args()
    cfg = SHAPES[a.shape]
    dtype, name = (torch.bfloat16, "BF16") if a.dtype == "bf16" else (torch.float32, "F32")
    size = 2 if a.dtype == "bf16" else 4
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump({**cfg, "torch_dtype": "bfloat16" if a.dtype == "bf16" else "float32"}, f, indent=1)
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": False}, f)
    header, offset, specs = {}, 0, list(tensors(cfg))
    for n, shape, _ in specs:
        nbytes = math.prod(shape) * size
        header[n] = {"dtype": name, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    gen = torch.Generator().manual_seed(0)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for n, shape, fan_in in specs:
            t = torch.ones(shape) if fan_in == 0 else torch.randn(shape, generator=gen) / math.sqrt(fan_in)
            f.write(t.to(dtype).contiguous().view(torch.uint8).numpy().tobytes())
    print(f"{a.out}: {a.shape}, {sum(math.prod(s) for _, s, _ in specs) / 1e9:.3f} B parameters, {offset / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
