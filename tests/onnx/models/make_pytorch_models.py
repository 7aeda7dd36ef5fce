#!/usr/bin/python3
"""Regenerates the PyTorch-exported ONNX fixtures in this folder.

Every case is a small float32 torch.nn.Module in eval mode, exported with torch.onnx.export(opset_version=17)
and saved with its inputs and the outputs PyTorch computes (float32) from the same module and inputs.
Seeds are fixed, so reruns with the same torch build reproduce the same files.

Usage (from the repository root):  /usr/bin/python3 tests/onnx/models/make_pytorch_models.py [case ...]
"""

import json
import math
import os
import shutil
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 17

D_MODEL, HEADS, FFN, SEQ, BATCH = 64, 4, 128, 16, 2


def randomize_(module, seed):
    """Deterministic non-trivial values for every parameter (LayerNorm scale/bias included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            elif name.endswith("weight"):  # 1-D weights are norm scales
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return module


def randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------------


class Dense3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(D_MODEL, FFN)
        self.act = nn.GELU()  # exact erf form

    def forward(self, x):
        return self.act(self.linear(x))


class BertEncoderLayer(nn.Module):
    """BERT-style post-LN encoder layer, attention written out explicitly."""

    def __init__(self, d=D_MODEL, heads=HEADS, ffn=FFN, eps=1e-12):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.attn_norm = nn.LayerNorm(d, eps=eps)
        self.ffn_in = nn.Linear(d, ffn)
        self.ffn_out = nn.Linear(ffn, d)
        self.ffn_norm = nn.LayerNorm(d, eps=eps)

    def split_heads(self, t):
        b, s, _ = t.shape
        return t.view(b, s, self.heads, self.dh).transpose(1, 2)  # [b, h, s, dh]

    def forward(self, x, attention_mask):
        b, s, d = x.shape
        q = self.split_heads(self.query(x))
        k = self.split_heads(self.key(x))
        v = self.split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh)
        scores = scores + attention_mask  # [b,1,1,s]: 0 keep, -10000 masked
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, d)
        h = self.attn_norm(x + self.attn_out(ctx))
        f = self.ffn_out(F.gelu(self.ffn_in(h)))
        return self.ffn_norm(h + f)


class GptCausalBlock(nn.Module):
    """Pre-LN GPT block with fused qkv projection and a tril-buffer causal mask."""

    def __init__(self, d=D_MODEL, heads=HEADS, ffn=FFN, block_size=32):
        super().__init__()
        self.heads, self.d = heads, d
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp_fc = nn.Linear(d, ffn)
        self.mlp_act = nn.GELU(approximate="tanh")
        self.mlp_proj = nn.Linear(ffn, d)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size,
                                                                                           block_size))

    def attn(self, x):
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(self.d, dim=2)
        q = q.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d // self.heads))
        att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(self.mlp_act(self.mlp_fc(self.ln_2(x))))


class SwigluMlp(nn.Module):
    def __init__(self, d=D_MODEL, hidden=FFN):
        super().__init__()
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class GruCellGates(nn.Module):
    """GRU cell written out gate by gate (x W / h U with [in, H] / [H, H] matrices)."""

    def __init__(self, cell: nn.GRUCell):
        super().__init__()
        hsz = cell.hidden_size
        w_ih, w_hh = cell.weight_ih.detach(), cell.weight_hh.detach()  # [3H, in], [3H, H], rows r|z|n
        b_ih, b_hh = cell.bias_ih.detach(), cell.bias_hh.detach()
        part = lambda t, i: t[i * hsz:(i + 1) * hsz]  # noqa: E731
        self.w_r = nn.Parameter(part(w_ih, 0).t().contiguous())
        self.w_z = nn.Parameter(part(w_ih, 1).t().contiguous())
        self.w_n = nn.Parameter(part(w_ih, 2).t().contiguous())
        self.u_r = nn.Parameter(part(w_hh, 0).t().contiguous())
        self.u_z = nn.Parameter(part(w_hh, 1).t().contiguous())
        self.u_n = nn.Parameter(part(w_hh, 2).t().contiguous())
        self.b_r = nn.Parameter(part(b_ih, 0) + part(b_hh, 0))
        self.b_z = nn.Parameter(part(b_ih, 1) + part(b_hh, 1))
        self.b_n = nn.Parameter(part(b_ih, 2).clone())
        self.b_hn = nn.Parameter(part(b_hh, 2).clone())

    def forward(self, x, h):
        r = torch.sigmoid(x @ self.w_r + h @ self.u_r + self.b_r)
        z = torch.sigmoid(x @ self.w_z + h @ self.u_z + self.b_z)
        n = torch.tanh(x @ self.w_n + self.b_n + r * (h @ self.u_n + self.b_hn))
        return (1 - z) * n + z * h


class QuadraticNeuron(nn.Module):
    def __init__(self, d=32, n=16):
        super().__init__()
        self.a = nn.Parameter(torch.empty(d, n))
        self.b = nn.Parameter(torch.empty(d, n))
        self.c = nn.Parameter(torch.empty(d, n))

    def forward(self, x):
        return (x @ self.a) * (x @ self.b) + (x * x) @ self.c


class RmsNormDecomposed(nn.Module):
    def __init__(self, d=D_MODEL, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def bert_mask(seq, lengths):
    """[batch, 1, 1, seq] additive mask: 0 for the first lengths[i] positions of example i, -10000 after."""
    keep = torch.zeros(len(lengths), seq)
    for i, n in enumerate(lengths):
        keep[i, :n] = 1
    return ((1.0 - keep) * -10000.0).view(len(lengths), 1, 1, seq)


# ---------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------


def save_arrays(folder, names, tensors):
    os.makedirs(folder)
    for key, value in zip(names, tensors):
        arr = value.detach().numpy()
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        np.save(os.path.join(folder, key + ".npy"), np.ascontiguousarray(arr))


def run(module, inputs):
    with torch.no_grad():
        out = module(*inputs)
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


def export_case(name, module, inputs, input_names, output_names, description, dynamic_axes=None,
                alt_inputs=None):
    """Exports module and writes model.onnx, inputs/, outputs/, info.json; with alt_inputs (other sizes along the
    dynamic axes) also inputs_alt/ and outputs_alt/."""
    module.eval()
    case = os.path.join(HERE, name)
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(case)
    expected = run(module, inputs)
    assert len(expected) == len(output_names)
    path = os.path.join(case, "model.onnx")
    torch.onnx.export(module, tuple(inputs), path, opset_version=OPSET, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes or None, do_constant_folding=True)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == input_names, [i.name for i in model.graph.input]
    assert [o.name for o in model.graph.output] == output_names
    save_arrays(os.path.join(case, "inputs"), input_names, inputs)
    save_arrays(os.path.join(case, "outputs"), output_names, expected)
    if alt_inputs is not None:
        assert dynamic_axes, "alternative sizes only make sense along dynamic axes"
        save_arrays(os.path.join(case, "inputs_alt"), input_names, alt_inputs)
        save_arrays(os.path.join(case, "outputs_alt"), output_names, run(module, alt_inputs))
    # JSON keys must be strings: {"x": {"0": "batch"}}.
    axes = {k: {str(a): n for a, n in v.items()} for k, v in (dynamic_axes or {}).items()}
    info = {
        "source": "pytorch",
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": OPSET,
        "description": description,
        "dynamic_axes": axes,
        "reference": "PyTorch float32 forward of the exported module (eval mode, no_grad)",
    }
    if alt_inputs is not None:
        info["alt_input_shapes"] = {k: list(v.shape) for k, v in zip(input_names, alt_inputs)}
    with open(os.path.join(case, "info.json"), "w") as fp:
        json.dump(info, fp, indent=2)
        fp.write("\n")
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{name}: {len(model.graph.node)} nodes, ops {ops}")


def case_gemm():
    torch.manual_seed(1)
    module = randomize_(nn.Linear(32, 16), 1)
    export_case("gemm", module, [randn(11, 4, 32)], ["x"], ["y"],
                "nn.Linear(32, 16) on a 2-D input x [batch=4, 32]; exports a single Gemm.",
                {"x": {0: "batch"}, "y": {0: "batch"}}, alt_inputs=[randn(21, 3, 32)])


def case_dense_3d():
    module = randomize_(Dense3d(), 2)
    export_case("dense_3d", module, [randn(12, BATCH, SEQ, D_MODEL)], ["x"], ["y"],
                "nn.Linear(64, 128) + nn.GELU() (exact erf) on x [batch=2, seq=16, 64]; exports MatMul+Add and "
                "the Div/Erf/Add/Mul/Mul GELU pattern.",
                {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}, alt_inputs=[randn(22, 3, 9, D_MODEL)])


def case_bert(static):
    module = randomize_(BertEncoderLayer(), 3)
    name = "bert_encoder_layer_static" if static else "bert_encoder_layer"
    axes = None if static else {
        "x": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 3: "seq"},
        "y": {0: "batch", 1: "seq"},
    }
    desc = ("BERT-style post-LN encoder layer written out explicitly (d_model 64, 4 heads, FFN 128, erf GELU, "
            "LayerNorm eps 1e-12): q/k/v Linear, view+transpose into heads, q@k^T/sqrt(16) + additive mask "
            "[batch,1,1,seq] (0 / -10000; example 1 masks its last 5 positions), softmax(-1), @v, transpose+"
            "reshape back, out Linear, residual+LayerNorm, FFN Linear-GELU-Linear, residual+LayerNorm. "
            "x [2,16,64].")
    desc += " Exported without dynamic axes." if static else " Exported with dynamic 'batch' and 'seq' axes."
    alt = None if static else [randn(23, 3, 9, D_MODEL), bert_mask(9, [9, 6, 2])]
    export_case(name, module, [randn(13, BATCH, SEQ, D_MODEL), bert_mask(SEQ, [SEQ, SEQ - 5])],
                ["x", "attention_mask"], ["y"], desc, axes, alt)


def case_torch_encoder_layer():
    torch.manual_seed(4)
    module = nn.TransformerEncoderLayer(d_model=D_MODEL, nhead=HEADS, dim_feedforward=FFN, dropout=0.0,
                                        batch_first=True, activation="gelu")
    randomize_(module, 4)
    export_case("torch_encoder_layer", module, [randn(14, BATCH, SEQ, D_MODEL)], ["x"], ["y"],
                "nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0, batch_first=True, "
                "activation='gelu'), post-LN, no mask; x [2,16,64]; dynamic 'batch' and 'seq'.",
                {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}, alt_inputs=[randn(24, 3, 9, D_MODEL)])


def case_gpt():
    module = randomize_(GptCausalBlock(), 5)
    export_case("gpt_causal_block", module, [randn(15, BATCH, SEQ, D_MODEL)], ["x"], ["y"],
                "Pre-LN GPT block (d_model 64, 4 heads, MLP 128): LayerNorm, fused qkv Linear(64,192) + split, "
                "causal mask from a registered tril buffer [1,1,32,32] sliced to [:,:,:T,:T] with "
                "masked_fill(mask == 0, -inf), softmax(-1), @v, out proj, residual; LayerNorm, MLP with "
                "GELU(approximate='tanh'), residual. x [2,16,64]; dynamic 'seq' axis only.",
                {"x": {1: "seq"}, "y": {1: "seq"}}, alt_inputs=[randn(25, BATCH, 9, D_MODEL)])


def case_swiglu():
    module = randomize_(SwigluMlp(), 6)
    export_case("swiglu_mlp", module, [randn(16, BATCH, SEQ, D_MODEL)], ["x"], ["y"],
                "Llama-style SwiGLU MLP without biases: down(silu(gate(x)) * up(x)), 64 -> 128 -> 64; x [2,16,64].",
                {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}, alt_inputs=[randn(26, 3, 9, D_MODEL)])


def case_gru():
    torch.manual_seed(7)
    cell = nn.GRUCell(24, 32)
    randomize_(cell, 7)
    cell.eval()
    module = GruCellGates(cell)
    x, h = randn(17, 4, 24), randn(18, 4, 32)
    with torch.no_grad():
        ours, ref = module(x, h), cell(x, h)
    err = (ours - ref).abs().max().item()
    assert err < 1e-5, f"gate formula differs from nn.GRUCell by {err}"
    export_case("gru_cell", module, [x, h], ["x", "h"], ["h_next"],
                "GRU cell written out as gates (r, z, n; n = tanh(x Wn + bn + r*(h Un + bhn))), x [batch=4, 24], "
                "h [batch=4, 32]; weights taken from an nn.GRUCell and checked against it "
                f"(max |diff| {err:.1e}).",
                {"x": {0: "batch"}, "h": {0: "batch"}, "h_next": {0: "batch"}},
                alt_inputs=[randn(27, 5, 24), randn(28, 5, 32)])


def case_quadratic():
    module = randomize_(QuadraticNeuron(), 8)
    export_case("quadratic_neuron", module, [randn(19, 4, 32)], ["x"], ["y"],
                "Quadratic neuron y = (x@A) * (x@B) + (x*x)@C, A/B/C [32,16] parameters; x [batch=4, 32].",
                {"x": {0: "batch"}, "y": {0: "batch"}}, alt_inputs=[randn(29, 5, 32)])


def case_rms_norm():
    module = RmsNormDecomposed()
    with torch.no_grad():
        module.weight.copy_(1.0 + 0.1 * randn(9, D_MODEL))
    export_case("rms_norm_decomposed", module, [randn(20, BATCH, SEQ, D_MODEL)], ["x"], ["y"],
                "RMSNorm written out: x * rsqrt(mean(x^2, -1, keepdim) + 1e-6) * weight; x [2,16,64].",
                {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}, alt_inputs=[randn(30, 3, 9, D_MODEL)])


CASES = {
    "gemm": case_gemm,
    "dense_3d": case_dense_3d,
    "bert_encoder_layer": lambda: case_bert(static=False),
    "bert_encoder_layer_static": lambda: case_bert(static=True),
    "torch_encoder_layer": case_torch_encoder_layer,
    "gpt_causal_block": case_gpt,
    "swiglu_mlp": case_swiglu,
    "gru_cell": case_gru,
    "quadratic_neuron": case_quadratic,
    "rms_norm_decomposed": case_rms_norm,
}


def main(argv):
    torch.set_num_threads(1)  # deterministic reductions
    names = argv or list(CASES)
    for name in names:
        CASES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
