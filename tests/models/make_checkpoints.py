#!/usr/bin/python3
"""Writes the small random-weight decoder checkpoints of tests/models/fixtures/ in the exact Hugging Face
layout (config.json, generation_config.json, model.safetensors or shards + model.safetensors.index.json,
tensor names and [out, in] nn.Linear / [in, out] GPT-2 Conv1D layouts) and, for each, the reference of a
plain float64 PyTorch forward written from the architectures' definitions (Hugging Face's modeling_*.py
semantics; `transformers` is not packaged in Debian, so it is not used):

  reference.json: {"prompt": 40 ids, "logits": [40][vocab] float64, "greedy": 32 ids, "min_gap": float}

"greedy" continues the prompt by argmax, recomputing the whole sequence each step; "min_gap" is the
smallest distance between the top two logits over those steps (divided by max |logit|), so a test
knows the greedy ids are robust to f32 rounding. Run with Debian's python3-torch:

  /usr/bin/python3 tests/models/make_checkpoints.py tests/models/fixtures [NAME ...]

(with names, only those fixtures are rewritten). Mistral's reference uses its sliding window (a query at
position i sees keys j with i - sliding_window < j <= i, as transformers' sliding-window causal mask).
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)

PROMPT_LEN, GREEDY_LEN = 40, 32


# --- safetensors (written here: the safetensors package is not in Debian) ---------------------------
DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].to(dtype).contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def write_checkpoint(folder, tensors, dtype, shards):
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype)
        return
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for i, n in enumerate(names) if i % shards == s}
        write_safetensors(os.path.join(folder, file), part, dtype)
        weight_map.update({n: file for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)


# --- the reference forward, float64 ------------------------------------------------------------------
def rms_norm(x, w, eps, one_plus=False):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * ((1.0 + w) if one_plus else w)


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def act(name, x):
    if name in ("silu", "swish"):
        return torch.nn.functional.silu(x)
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))
    raise ValueError(name)


def inv_freq(cfg, dim):
    f = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    s = cfg.get("rope_scaling")
    if s and s.get("rope_type") == "llama3":  # HF _compute_llama3_parameters
        factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        old = s["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / f
        scaled = torch.where(wavelen > low_wavelen, f / factor, f)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        f = torch.where(medium, smoothed, scaled)
    return f


def rope(x, positions, f):  # x [S, H, D], rotate-half form
    ang = positions[:, None].double() * f[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :], torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def attention(q, k, v, window=None):  # [S, H, D], [S, Hkv, D]: causal GQA, scale 1/sqrt(D)
    s, h, d = q.shape
    rep = h // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    scores = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(d)
    i, j = torch.arange(s)[:, None], torch.arange(s)[None, :]
    hidden = j > i
    if window:  # Mistral's sliding window, as transformers' sliding_window_overlay: kv_idx > q_idx - window
        hidden = hidden | (j <= i - window)
    scores = scores.masked_fill(hidden, float("-inf"))
    return torch.einsum("hij,jhd->ihd", scores.softmax(-1), v).reshape(s, h * d)


def forward(arch, cfg, w, ids):
    ids = torch.tensor(ids)
    pos = torch.arange(len(ids))
    if arch == "GPT2LMHeadModel":
        d, h = cfg["n_embd"], cfg["n_head"]
        x = w["wte.weight"][ids] + w["wpe.weight"][pos]
        eps = cfg["layer_norm_epsilon"]
        for i in range(cfg["n_layer"]):
            p = f"h.{i}."
            a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
            qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (t.reshape(len(ids), h, d // h) for t in qkv.split(d, -1))
            x = x + attention(q, k, v) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
            m = act(cfg["activation_function"], m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
        return x @ w["wte.weight"].T
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    hkv = cfg.get("num_key_value_heads", h)
    hd = cfg.get("head_dim", d // h)
    gemma = arch == "GemmaForCausalLM"
    eps = cfg["rms_norm_eps"]
    f = inv_freq(cfg, hd)
    qkv_bias = arch == "Qwen2ForCausalLM" or cfg.get("attention_bias", False)
    o_bias = arch != "Qwen2ForCausalLM" and cfg.get("attention_bias", False)
    act_name = cfg.get("hidden_activation", "gelu_pytorch_tanh") if gemma else cfg["hidden_act"]
    window = cfg.get("sliding_window") if arch == "MistralForCausalLM" else None  # null: full causal

    def lin(x, name, bias):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if bias else y

    x = w["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * math.sqrt(d)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps, gemma)
        q = lin(a, p + "self_attn.q_proj", qkv_bias).reshape(len(ids), h, hd)
        k = lin(a, p + "self_attn.k_proj", qkv_bias).reshape(len(ids), hkv, hd)
        v = lin(a, p + "self_attn.v_proj", qkv_bias).reshape(len(ids), hkv, hd)
        if arch == "Qwen3ForCausalLM":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        a = attention(rope(q, pos, f), rope(k, pos, f), v, window)
        x = x + lin(a, p + "self_attn.o_proj", o_bias)
        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, gemma)
        g = act(act_name, lin(m, p + "mlp.gate_proj", False)) * lin(m, p + "mlp.up_proj", False)
        x = x + lin(g, p + "mlp.down_proj", False)
    x = rms_norm(x, w["model.norm.weight"], eps, gemma)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) or gemma else w["lm_head.weight"]
    return x @ head.T


# --- the fixtures ------------------------------------------------------------------------------------
def llama_like_weights(arch, cfg, gen):
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    hkv, hd, ffn, vocab = cfg["num_key_value_heads"], cfg.get("head_dim", d // h), cfg["intermediate_size"], cfg["vocab_size"]
    gemma = arch == "GemmaForCausalLM"
    r = lambda *s, std=1.0: torch.randn(*s, generator=gen) * std
    norm = (lambda n: r(n, std=0.1)) if gemma else (lambda n: 1.0 + r(n, std=0.1))
    # A tied head scores x against the embeddings: small ones keep the layers' outputs, not the current
    # token's own embedding, in charge of the next token (else greedy repeats the last token).
    tied = cfg.get("tie_word_embeddings", False) or gemma
    w = {"model.embed_tokens.weight": r(vocab, d, std=0.02 if gemma else 0.1 if tied else 1.0),
         "model.norm.weight": norm(d)}
    if not tied:
        w["lm_head.weight"] = r(vocab, d, std=1.0 / math.sqrt(d))
    qkv_bias = arch == "Qwen2ForCausalLM" or cfg.get("attention_bias", False)
    o_bias = arch != "Qwen2ForCausalLM" and cfg.get("attention_bias", False)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "post_attention_layernorm.weight"] = norm(d)
        for name, out in (("q", h * hd), ("k", hkv * hd), ("v", hkv * hd)):
            w[p + f"self_attn.{name}_proj.weight"] = r(out, d, std=1.0 / math.sqrt(d))
            if qkv_bias:
                w[p + f"self_attn.{name}_proj.bias"] = r(out, std=0.1)
        w[p + "self_attn.o_proj.weight"] = r(d, h * hd, std=1.0 / math.sqrt(h * hd))
        if o_bias:
            w[p + "self_attn.o_proj.bias"] = r(d, std=0.1)
        if arch == "Qwen3ForCausalLM":
            w[p + "self_attn.q_norm.weight"] = 1.0 + r(hd, std=0.1)
            w[p + "self_attn.k_norm.weight"] = 1.0 + r(hd, std=0.1)
        w[p + "mlp.gate_proj.weight"] = r(ffn, d, std=1.0 / math.sqrt(d))
        w[p + "mlp.up_proj.weight"] = r(ffn, d, std=1.0 / math.sqrt(d))
        w[p + "mlp.down_proj.weight"] = r(d, ffn, std=1.0 / math.sqrt(ffn))
    return w


def gpt2_weights(cfg, gen):
    d, vocab, ffn = cfg["n_embd"], cfg["vocab_size"], 4 * cfg["n_embd"]
    r = lambda *s, std=1.0: torch.randn(*s, generator=gen) * std
    w = {"wte.weight": r(vocab, d, std=0.05), "wpe.weight": r(cfg["n_positions"], d, std=0.02),
         "ln_f.weight": 1.0 + r(d, std=0.1), "ln_f.bias": r(d, std=0.1)}
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = 1.0 + r(d, std=0.1), r(d, std=0.1)
        w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"] = r(d, 3 * d, std=1 / math.sqrt(d)), r(3 * d, std=0.1)
        w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"] = r(d, d, std=1 / math.sqrt(d)), r(d, std=0.1)
        w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"] = r(d, ffn, std=1 / math.sqrt(d)), r(ffn, std=0.1)
        w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"] = r(ffn, d, std=1 / math.sqrt(ffn)), r(d, std=0.1)
    return w


LLAMA = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 96, "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
         "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
FIXTURES = {
    # name: (architecture, config additions, dtype written, shards)
    "llama": ("LlamaForCausalLM", {"rope_theta": 500000.0, "tie_word_embeddings": False,
                                   "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 16}},
              torch.float32, 2),
    "llama_bf16": ("LlamaForCausalLM", {"rope_theta": 10000.0, "attention_bias": True, "torch_dtype": "bfloat16"},
                   torch.bfloat16, 1),
    # A window of 16: the 40-token prompt and the 32 greedy steps run past it (banded attention).
    "mistral": ("MistralForCausalLM", {"rope_theta": 10000.0, "sliding_window": 16}, torch.float32, 1),
    "qwen2": ("Qwen2ForCausalLM", {"rope_theta": 1000000.0, "tie_word_embeddings": True}, torch.float32, 1),
    "qwen3": ("Qwen3ForCausalLM", {"rope_theta": 1000000.0, "head_dim": 24, "tie_word_embeddings": True},
              torch.float32, 1),
    "gemma": ("GemmaForCausalLM", {"head_dim": 16, "hidden_activation": "gelu_pytorch_tanh", "hidden_act": "gelu",
                                   "rms_norm_eps": 1e-6}, torch.float32, 1),
    # bf16 checkpoints of the other weight layouts read in place at precision bf16: tied embeddings as
    # the head with per-head q/k norms (Qwen3), and the √d-scaled embedding with GeGLU (Gemma).
    "qwen3_bf16": ("Qwen3ForCausalLM", {"rope_theta": 1000000.0, "head_dim": 24, "tie_word_embeddings": True,
                                        "torch_dtype": "bfloat16"}, torch.bfloat16, 1),
    "gemma_bf16": ("GemmaForCausalLM", {"head_dim": 16, "hidden_activation": "gelu_pytorch_tanh", "hidden_act": "gelu",
                                        "rms_norm_eps": 1e-6, "torch_dtype": "bfloat16"}, torch.bfloat16, 1),
}
GPT2 = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128, "vocab_size": 96, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "bos_token_id": 95, "eos_token_id": 95}


def make(folder, name, arch, cfg, dtype, shards, seed):
    gen = torch.Generator().manual_seed(seed)
    w = gpt2_weights(cfg, gen) if arch == "GPT2LMHeadModel" else llama_like_weights(arch, cfg, gen)
    # The reference runs on exactly the weights the file holds (bf16 rounded where written as bf16).
    w = {n: t.to(dtype).double() for n, t in w.items()}
    out = os.path.join(folder, name)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"architectures": [arch], "model_type": name, **cfg}, f, indent=1)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": False}, f,
                  indent=1)
    write_checkpoint(out, w, dtype, shards)
    # A prompt that avoids the eos token, and greedy steps whose top two logits are well apart.
    eos = cfg["eos_token_id"]
    for attempt in range(200):
        g = torch.Generator().manual_seed(seed * 1000 + attempt)
        prompt = [t for t in torch.randint(3, cfg["vocab_size"], (PROMPT_LEN,), generator=g).tolist()]
        logits = forward(arch, cfg, w, prompt)
        seq, gaps, ok = list(prompt), [], True
        for _ in range(GREEDY_LEN):
            last = forward(arch, cfg, w, seq)[-1]
            top = torch.topk(last, 2).values
            gaps.append(float((top[0] - top[1]) / last.abs().max()))
            token = int(last.argmax())
            if token == eos:
                ok = False
                break
            seq.append(token)
        if ok and min(gaps) > 1e-3:
            break
    else:
        sys.exit(f"{name}: no prompt with well-separated greedy steps")
    ref = {"prompt": prompt, "logits": logits.tolist(), "greedy": seq[PROMPT_LEN:], "min_gap": min(gaps)}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(f"{name}: {arch}, {sum(t.numel() for t in w.values())} parameters, min greedy gap {min(gaps):.2e}")


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
    only = set(sys.argv[2:])  # fixture names to rewrite; none: all
    for seed, (name, (arch, extra, dtype, shards)) in enumerate(FIXTURES.items(), start=1):
        if not only or name in only:
            make(folder, name, arch, {**LLAMA, **extra}, dtype, shards, seed)
    if not only or "gpt2" in only:
        make(folder, "gpt2", "GPT2LMHeadModel", GPT2, torch.float32, 1, 7)


if __name__ == "__main__":
    main()
