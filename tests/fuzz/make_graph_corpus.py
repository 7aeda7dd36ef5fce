#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_graph_build (corpus/graph_build/*.bin): GraphBuilder programs
in the byte encoding of graph_build_body.cc that build, compile and run, so fuzzing starts from deep
paths (dense chains, attention over a KV cache with rope, layout and typed ops).

Run from anywhere: python3 tests/fuzz/make_graph_corpus.py
"""
import os

OPS = ["constant", "dense", "matmul", "activation", "multiplex", "output_gate", "synaptic_gate", "attention",
       "attention_qkv", "rope_const", "rope_value", "kv_cache", "kv_cache_append", "binary", "unary", "clip",
       "hard_sigmoid", "reduce", "gather", "where", "equal", "cast", "expand", "softmax", "norm", "reshape",
       "transpose", "concat", "split", "slice", "output"]
ACT = {"identity": 0, "relu": 1, "sigmoid": 3, "tanh": 4, "gelu": 5, "silu": 7}
DTYPE = {"f32": 0, "i64": 192, "bool": 224}


def dim_byte(d):
    if d <= 5:
        return d
    assert d <= 16
    return next(b for b in range(200, 240) if b % 17 == d)


def f32_byte(v):
    b = round(v * 8) + 36
    assert 0 <= b < 72, v
    return b


class Program:
    def __init__(self, sym_a=2, sym_b=3, varied=True):
        self.inputs, self.body, self.header = [], [], [sym_a, sym_b, 1 | (8 if varied else 0)]
        self.values = 0  # values made so far (the decoder's values_ list)
        self.n_inputs = 0

    def input(self, dims, dtype="f32"):
        b = [len(dims)]
        for d in dims:
            b += [5] if d == "a" else [10] if d == "b" else [1, dim_byte(d)]
        self.inputs += b + [DTYPE[dtype]]
        self.n_inputs += 1
        self.values += 1
        return self.values - 1

    def op(self, name, *bytes_, pushes=1):
        self.body += [OPS.index(name), *bytes_]
        self.values += pushes
        return self.values - 1

    def weights(self, n, seed):
        return [f32_byte(((i * 7 + seed) % 9 - 4) / 8) for i in range(n)]

    def bytes(self):
        return bytes([self.n_inputs - 1] + self.header + self.inputs + self.body)


def dense(p, x, k, n, act, seed, bias=True):
    b = [x, 1, n - 1, 0, 1] + p.weights(k * n, seed) + ([1, 1] + p.weights(n, seed + 1) if bias else [0])
    return p.op("dense", *b, ACT[act])


def mlp():
    p = Program()
    x = p.input(["a", 8])
    h = dense(p, x, 8, 6, "silu", 1)
    h = p.op("norm", h, 1, 1, *p.weights(6, 2), 1, *p.weights(6, 3), f32_byte(0.125), 0)  # layer_norm
    y = dense(p, h, 6, 4, "gelu", 4, bias=False)
    p.op("output", 0, y, pushes=0)
    return p


def attention_4d():
    p = Program()
    q = p.input([1, 2, 3, 4])
    kv = p.input([1, 1, 5, 4])
    mask = p.input([3, 5])
    a = p.op("attention", 0, q, kv, kv, 1, mask, 0, 1, 2, 1)  # causal, heads 2, kv heads 1
    s = p.op("softmax", 0, a, 5, 0)  # axis -1
    p.op("output", 0, s, pushes=0)
    p.op("output", 0, a, pushes=0)
    return p


def kv_cache_decode():
    # x [1, S=2, 8]: two kv heads of dim 4; rope at the cache length, append, attend over the cache.
    p = Program()
    x = p.input([1, 2, 8])
    length = p.op("kv_cache", 0, 2, 4, 1, 16)  # pushes kv_cache_length
    r = p.op("rope_value", 0, x, length, 2, 4, 0, 0)  # heads 2, head_dim 4, token-major
    view = p.op("kv_cache_append", 0, 0, 0, r, x, pushes=3)  # keys, values, key_lengths
    keys, values, lengths = view - 2, view - 1, view
    a = p.op("attention", 0, r, keys, values, 0, 1, lengths, 3, 2, 2)  # causal from key lengths
    p.op("output", 0, a, pushes=0)
    return p


def packed_qkv():
    p = Program()
    x = p.input([1, "a", 8])
    qkv = dense(p, x, 8, 6, "identity", 5, bias=False)  # (2 + 2·1)·... heads: q 1, kv 1, D 2
    a = p.op("attention_qkv", 0, qkv, 0, 0, 1, 1, 1)  # causal, heads 1, kv heads 1
    r = p.op("rope_const", 0, a, 4 + 3, 1, 2, 0, 0)  # offset 3
    p.op("output", 0, r, pushes=0)
    return p


def layout():
    p = Program()
    x = p.input([2, 3, 4])
    t = p.op("transpose", 0, x, 1, 1, 0)  # a shuffled permutation
    r = p.op("reshape", 0, t, 2, 1, 0)  # [4, 2, 3] to [0, -1]
    s = p.op("split", 0, x, 6 + 2, 2, 1, 1, 1, 3, pushes=2)  # [1, 3] along axis 2
    c = p.op("concat", 0, 2, s - 1, s, 6 + 2)
    g = p.op("gather", 0, c, 0, 1, 1, 2, 4 + 1, 4 + 0, 6 + 1)  # constant indices [1, 0] on axis 1
    sl = p.op("slice", 0, g, 1, 4 + 0, 4 + 1, 6 + 0, 0)
    p.op("output", 0, r, pushes=0)
    p.op("output", 0, sl, pushes=0)
    return p


def typed():
    p = Program()
    i = p.input([4], "i64")
    m = p.input([4], "bool")
    f = p.input(["a", 4])
    c = p.op("cast", 0, i, 0)  # to f32
    e = p.op("equal", 0, c, f)
    w = p.op("where", 0, m, f, c)
    w2 = p.op("where", 0, e, w, f)
    b = p.op("binary", 0, 2, w2, c)  # mul
    u = p.op("unary", 0, 1, b)  # abs
    cl = p.op("clip", 0, u, f32_byte(-1), f32_byte(2))
    ex = p.op("expand", 0, cl, 3, 1, 3, 1, 1, 1, 1)  # [a, 4] with [3, 1, 1]
    rd = p.op("reduce", 0, 0, ex, 1, 6 - 1, 1)  # sum over the last axis, keepdims
    p.op("output", 0, rd, pushes=0)
    return p


def gates():
    p = Program()
    s = p.input(["b", 6])
    g = p.input([6, 3])
    m = p.op("multiplex", 0, s, s, f32_byte(0.5), ACT["tanh"])
    o = p.op("output_gate", 0, m, s, ACT["silu"], ACT["identity"])
    sg = p.op("synaptic_gate", 0, o, 1, 2, 1, *p.weights(18, 6), g)
    h = p.op("hard_sigmoid", 0, sg, f32_byte(0.25), f32_byte(0.5))
    mm = p.op("matmul", 0, h, g, 2)  # h [b, 3] · gᵀ [3, 6]
    p.op("output", 0, mm, pushes=0)
    return p


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "graph_build")
    os.makedirs(out, exist_ok=True)
    for make in (mlp, attention_4d, kv_cache_decode, packed_qkv, layout, typed, gates):
        with open(os.path.join(out, make.__name__ + ".bin"), "wb") as f:
            f.write(make().bytes())


if __name__ == "__main__":
    main()
