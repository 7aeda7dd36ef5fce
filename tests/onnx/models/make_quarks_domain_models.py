#!/usr/bin/python3
"""Regenerates the ai.quarks custom-domain ONNX fixtures in this folder.

Each case is written with onnx.helper (opsets: "" 17 and "ai.quarks" 1). Expected outputs are computed
with NumPy in float64 from the float32 inputs/weights and stored as float32. Inputs that feed a step
(ThresholdGate, PolynomialThreshold, sign/heaviside) are kept more than 1e-3 away from the step so float32
rounding in an engine cannot flip a result.

Usage (from the repository root):  /usr/bin/python3 tests/onnx/models/make_quarks_domain_models.py
"""

import json
import math
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "ai.quarks"
OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
MARGIN = 1e-3  # minimum distance of any step input from its step

# ---------------------------------------------------------------------------------------------------
# float64 reference semantics of the ai.quarks domain
# ---------------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def activation(name, s, alpha=0.01, coefficients=None):
    """f(s) in float64 for an ai.quarks activation name."""
    s = np.asarray(s, dtype=np.float64)
    if name == "identity":
        return s.copy()
    if name == "relu":
        return np.maximum(s, 0.0)
    if name == "leaky_relu":
        return np.where(s >= 0.0, s, alpha * s)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-s))
    if name == "tanh":
        return np.tanh(s)
    if name == "gelu":
        return 0.5 * s * (1.0 + _erf(s / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * s * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (s + 0.044715 * s**3)))
    if name == "silu":
        return s / (1.0 + np.exp(-s))
    if name == "square":
        return s * s
    if name == "polynomial":
        return polynomial(coefficients, s)
    if name == "sign":
        return np.where(s >= 0.0, 1.0, -1.0)
    if name == "heaviside":
        return np.where(s >= 0.0, 1.0, 0.0)
    raise ValueError(f"unknown activation {name}")


def polynomial(coefficients, x):
    """sum_i c_i x^i (coefficients[0] is the constant term), Horner form in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros_like(x)
    for c in reversed([float(c) for c in coefficients]):
        y = y * x + c
    return y


def step(kind, v):
    if kind == "heaviside":
        return np.where(v >= 0.0, 1.0, 0.0)
    if kind == "sign":
        return np.where(v >= 0.0, 1.0, -1.0)
    raise ValueError(kind)


def ref_multiplex(s, a, lam=1.0, act="identity", alpha=0.01, coefficients=None):
    return activation(act, s.astype(np.float64) + lam * a.astype(np.float64), alpha, coefficients)


def ref_output_gate(s1, s2, f="identity", g="identity", f_alpha=0.01, g_alpha=0.01, f_coefficients=None,
                    g_coefficients=None):
    return activation(f, s1, f_alpha, f_coefficients) * activation(g, s2, g_alpha, g_coefficients)


def ref_synaptic_gate(x, w, g):
    """Y[..., n] = sum_k X[..., k] * W[k, n] * G[.., k, n]; G is [K,N], [M,K,1] or [M,K,N]."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    g = g.astype(np.float64)
    lead = x.shape[:-1]
    k = x.shape[-1]
    n = w.shape[1]
    x2 = x.reshape(-1, k)  # [M, K]
    if g.ndim == 2:
        y = x2 @ (w * g)
    else:
        assert g.shape[0] == x2.shape[0] and g.shape[1] == k
        y = np.einsum("mk,kn,mkn->mn", x2, w, np.broadcast_to(g, (x2.shape[0], k, n)))
    return y.reshape(*lead, n)


def ref_threshold_gate(x, kind="heaviside", threshold=0.0):
    return step(kind, x.astype(np.float64) - threshold)


def ref_polynomial_threshold(x, coefficients, kind="heaviside"):
    return step(kind, polynomial(coefficients, x))


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def init(name, array):
    return numpy_helper.from_array(f32(array), name)


def away_from(rng, shape, points, scale=1.0):
    """Standard-normal samples (float32) that stay more than 4*MARGIN away from every point."""
    x = f32(rng.standard_normal(shape) * scale)
    for p in points:
        close = np.abs(x.astype(np.float64) - p) <= 4 * MARGIN
        x[close] = np.float32(p + 0.05)
    for p in points:
        assert np.all(np.abs(x.astype(np.float64) - p) > MARGIN)
    return x


def write_case(name, graph, inputs, outputs, description, dynamic_axes=None, check=True, alt=None):
    """Writes model.onnx, inputs/, outputs/, info.json; alt = (inputs, outputs) at other sizes along the dynamic
    axes goes to inputs_alt/ and outputs_alt/."""
    model = helper.make_model(graph, opset_imports=OPSETS, producer_name="quarks-fixtures",
                              producer_version="1")
    model.ir_version = 8
    checker = "skipped"
    if check:
        onnx.checker.check_model(model)
        checker = "passed"
    case = os.path.join(HERE, name)
    if os.path.isdir(case):
        shutil.rmtree(case)
    os.makedirs(os.path.join(case, "inputs"))
    os.makedirs(os.path.join(case, "outputs"))
    onnx.save(model, os.path.join(case, "model.onnx"))
    graph_inputs = [i.name for i in model.graph.input]
    graph_outputs = [o.name for o in model.graph.output]
    assert sorted(graph_inputs) == sorted(inputs), (graph_inputs, list(inputs))
    assert sorted(graph_outputs) == sorted(outputs), (graph_outputs, list(outputs))
    for key, value in inputs.items():
        np.save(os.path.join(case, "inputs", key + ".npy"), f32(value))
    for key, value in outputs.items():
        np.save(os.path.join(case, "outputs", key + ".npy"), f32(value))
    if alt is not None:
        for sub, arrays in zip(("inputs_alt", "outputs_alt"), alt):
            os.makedirs(os.path.join(case, sub))
            for key, value in arrays.items():
                np.save(os.path.join(case, sub, key + ".npy"), f32(value))
    info = {
        "source": "onnx.helper",
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "opset": 17,
        "opset_imports": {"": 17, DOMAIN: 1},
        "reference": "NumPy float64, stored as float32",
        "description": description,
        "dynamic_axes": dynamic_axes or {},
        "checker": checker,
    }
    if alt is not None:
        info["alt_input_shapes"] = {k: list(v.shape) for k, v in alt[0].items()}
    with open(os.path.join(case, "info.json"), "w") as fp:
        json.dump(info, fp, indent=2)
        fp.write("\n")
    ops = [(n.domain or "ai.onnx") + "::" + n.op_type for n in model.graph.node]
    print(f"{name}: checker {checker}; nodes: {', '.join(ops)}")


# ---------------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------------


def case_multiplex():
    rng = np.random.default_rng(101)
    s = f32(rng.standard_normal((2, 3, 8)))
    a = f32(rng.standard_normal((8,)))  # broadcast over the two leading dims
    lam, alpha = 0.5, 0.1
    node = helper.make_node("Multiplex", ["s", "a"], ["y"], domain=DOMAIN, name="multiplex",
                            **{"lambda": lam, "activation": "leaky_relu", "alpha": alpha})
    graph = helper.make_graph([node], "quarks_multiplex", [vi("s", s.shape), vi("a", a.shape)],
                              [vi("y", s.shape)])
    y = ref_multiplex(s, a, lam, "leaky_relu", alpha)
    write_case("quarks_multiplex", graph, {"s": s, "a": a}, {"y": y},
               "Multiplex y = leaky_relu(s + 0.5*a, alpha=0.1); s [2,3,8], a [8] broadcast (trailing axis).")


def case_multiplex_polynomial():
    rng = np.random.default_rng(102)
    s = f32(rng.standard_normal((2, 3, 8)))
    a = f32(rng.standard_normal((2, 1, 8)))  # broadcast over the middle dim
    coeffs = [0.25, -1.0, 0.5, 0.125]
    node = helper.make_node("Multiplex", ["s", "a"], ["y"], domain=DOMAIN, name="multiplex",
                            **{"lambda": -2.0, "activation": "polynomial", "coefficients": coeffs})
    graph = helper.make_graph([node], "quarks_multiplex_polynomial", [vi("s", s.shape), vi("a", a.shape)],
                              [vi("y", s.shape)])
    y = ref_multiplex(s, a, -2.0, "polynomial", coefficients=coeffs)
    write_case("quarks_multiplex_polynomial", graph, {"s": s, "a": a}, {"y": y},
               "Multiplex y = p(s - 2*a), p(v) = 0.25 - v + 0.5 v^2 + 0.125 v^3; s [2,3,8], a [2,1,8] "
               "broadcast over the middle axis.")


def case_output_gate_swiglu():
    rng = np.random.default_rng(103)
    s1 = f32(rng.standard_normal((2, 16, 32)))
    s2 = f32(rng.standard_normal((2, 16, 32)))
    node = helper.make_node("OutputGate", ["s1", "s2"], ["y"], domain=DOMAIN, name="swiglu", f="silu",
                            g="identity")
    graph = helper.make_graph([node], "quarks_output_gate_swiglu", [vi("s1", s1.shape), vi("s2", s2.shape)],
                              [vi("y", s1.shape)])
    write_case("quarks_output_gate_swiglu", graph, {"s1": s1, "s2": s2}, {"y": ref_output_gate(s1, s2, "silu")},
               "OutputGate y = silu(s1) * s2 (SwiGLU gate), [2,16,32].")


def synaptic_case(name, g_kind, seed):
    rng = np.random.default_rng(seed)
    batch, seq, k, n = 2, 5, 12, 8
    m = batch * seq
    x = f32(rng.standard_normal((batch, seq, k)))
    w = f32(rng.standard_normal((k, n)) / math.sqrt(k))
    if g_kind == "mask":
        g = f32(rng.random((k, n)) < 0.6)  # 0/1 connectivity mask
        desc = "G [K,N] = [12,8] 0/1 connectivity mask (same for every row)"
    elif g_kind == "per_input":
        g = f32(rng.random((m, k, 1)))  # per-row, per-input gate in [0,1)
        desc = "G [M,K,1] = [10,12,1] per-row per-input gate, i.e. (x*G) @ W"
    else:
        g = f32(rng.random((m, k, n)))
        desc = "G [M,K,N] = [10,12,8] full per-row synapse gate"
    node = helper.make_node("SynapticGate", ["x", "w", "g"], ["y"], domain=DOMAIN, name="synaptic_gate")
    graph = helper.make_graph([node], name, [vi("x", x.shape), vi("g", g.shape)], [vi("y", (batch, seq, n))],
                              initializer=[init("w", w)])
    write_case(name, graph, {"x": x, "g": g}, {"y": ref_synaptic_gate(x, w, g)},
               f"SynapticGate y[...,n] = sum_k x[...,k] W[k,n] G[..,k,n]; x [2,5,12] (M=10), W [12,8] initializer 'w', "
               f"{desc}.")


def case_threshold_gate():
    rng = np.random.default_rng(107)
    points = [0.25, -0.5, 0.0]
    x = away_from(rng, (4, 24), points)
    nodes = [
        helper.make_node("ThresholdGate", ["x"], ["y_heaviside"], domain=DOMAIN, name="heaviside",
                         kind="heaviside", threshold=0.25),
        helper.make_node("ThresholdGate", ["x"], ["y_sign"], domain=DOMAIN, name="sign", kind="sign",
                         threshold=-0.5),
        helper.make_node("ThresholdGate", ["x"], ["y_default"], domain=DOMAIN, name="default"),
    ]
    graph = helper.make_graph(nodes, "quarks_threshold_gate", [vi("x", x.shape)],
                              [vi("y_heaviside", x.shape), vi("y_sign", x.shape), vi("y_default", x.shape)])
    outputs = {
        "y_heaviside": ref_threshold_gate(x, "heaviside", 0.25),
        "y_sign": ref_threshold_gate(x, "sign", -0.5),
        "y_default": ref_threshold_gate(x),
    }
    write_case("quarks_threshold_gate", graph, {"x": x}, outputs,
               "ThresholdGate three ways on x [4,24]: heaviside at 0.25, sign at -0.5, and all attributes "
               "defaulted (heaviside at 0). No input within 1e-3 of its threshold.")


def case_polynomial_threshold():
    rng = np.random.default_rng(108)
    coeffs = [-0.5, 0.3, 1.0]  # x^2 + 0.3x - 0.5, two real roots
    roots = np.roots(coeffs[::-1]).real
    x = away_from(rng, (4, 24), list(roots))
    assert np.all(np.abs(polynomial(coeffs, x)) > MARGIN)
    nodes = [
        helper.make_node("PolynomialThreshold", ["x"], ["y_heaviside"], domain=DOMAIN, name="poly_heaviside",
                         coefficients=coeffs),
        helper.make_node("PolynomialThreshold", ["x"], ["y_sign"], domain=DOMAIN, name="poly_sign",
                         coefficients=coeffs, kind="sign"),
    ]
    graph = helper.make_graph(nodes, "quarks_polynomial_threshold", [vi("x", x.shape)],
                              [vi("y_heaviside", x.shape), vi("y_sign", x.shape)])
    outputs = {
        "y_heaviside": ref_polynomial_threshold(x, coeffs),
        "y_sign": ref_polynomial_threshold(x, coeffs, "sign"),
    }
    write_case("quarks_polynomial_threshold", graph, {"x": x}, outputs,
               "PolynomialThreshold p(x) = -0.5 + 0.3x + x^2 on x [4,24]: kind defaulted (heaviside) and kind=sign. "
               "|p(x)| > 1e-3 everywhere.")


def case_mixed():
    rng = np.random.default_rng(109)
    batch, d, h, n = 3, 16, 32, 8
    threshold = 0.1
    w1 = f32(rng.standard_normal((d, h)) / math.sqrt(d))
    b1 = f32(rng.standard_normal((h,)) * 0.1)
    w2 = f32(rng.standard_normal((d, h)) / math.sqrt(d))
    b2 = f32(rng.standard_normal((h,)) * 0.1)
    w3 = f32(rng.standard_normal((h, n)) / math.sqrt(h))

    def reference(x):
        x = x.astype(np.float64)
        h1 = x @ w1 + b1
        h2 = x @ w2 + b2
        gated = ref_output_gate(h1, h2, "gelu", "identity")
        y = gated @ w3
        return y, ref_threshold_gate(y, "sign", threshold)

    def draw(rows):
        # Redraw until no pre-threshold value is within the margin of the threshold (deterministic: fixed rng).
        for _ in range(1000):
            x = f32(rng.standard_normal((rows, d)))
            y, y_sign = reference(x)
            if np.all(np.abs(y - threshold) > MARGIN):
                return x, y, y_sign
        raise RuntimeError("could not draw inputs away from the threshold")

    x, y, y_sign = draw(batch)
    x_alt, y_alt, y_sign_alt = draw(5)

    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["xw1"], name="up1/matmul"),
        helper.make_node("Add", ["xw1", "b1"], ["h1"], name="up1/add"),
        helper.make_node("MatMul", ["x", "w2"], ["xw2"], name="up2/matmul"),
        helper.make_node("Add", ["xw2", "b2"], ["h2"], name="up2/add"),
        helper.make_node("OutputGate", ["h1", "h2"], ["gated"], domain=DOMAIN, name="geglu", f="gelu",
                         g="identity"),
        helper.make_node("MatMul", ["gated", "w3"], ["y"], name="down/matmul"),
        helper.make_node("ThresholdGate", ["y"], ["y_sign"], domain=DOMAIN, name="decision", kind="sign",
                         threshold=threshold),
    ]
    graph = helper.make_graph(nodes, "quarks_mixed", [vi("x", ("batch", d))],
                              [vi("y", ("batch", n)), vi("y_sign", ("batch", n))],
                              initializer=[init("w1", w1), init("b1", b1), init("w2", w2), init("b2", b2),
                                           init("w3", w3)])
    write_case("quarks_mixed", graph, {"x": x}, {"y": y, "y_sign": y_sign},
               "Standard MatMul/Add with initializer weights around ai.quarks nodes: "
               "y = OutputGate(x@w1+b1, x@w2+b2, f=gelu, g=identity) @ w3 (GEGLU MLP), "
               "y_sign = ThresholdGate(y, kind=sign, threshold=0.1). x [batch=3, 16] with symbolic 'batch'; "
               "|y - 0.1| > 1e-3.",
               dynamic_axes={"x": {"0": "batch"}, "y": {"0": "batch"}, "y_sign": {"0": "batch"}},
               alt=({"x": x_alt}, {"y": y_alt, "y_sign": y_sign_alt}))


def self_test():
    """Cross-checks of the float64 references against independent formulations."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7))
    w = rng.standard_normal((7, 3))
    g_full = rng.random((5, 7, 3))
    loop = np.zeros((5, 3))
    for mi in range(5):
        for ni in range(3):
            loop[mi, ni] = sum(x[mi, ki] * w[ki, ni] * g_full[mi, ki, ni] for ki in range(7))
    assert np.allclose(ref_synaptic_gate(x, w, g_full), loop)
    g_in = rng.random((5, 7, 1))
    assert np.allclose(ref_synaptic_gate(x, w, g_in), (x * g_in[..., 0]) @ w)
    assert np.allclose(polynomial([1.0, 2.0, 3.0], np.array([2.0])), [17.0])
    assert np.allclose(activation("gelu", np.array([1.0])), [0.8413447460685429])
    assert np.allclose(activation("gelu_tanh", np.array([1.0])), [0.8411919906082768])


def main():
    self_test()
    case_multiplex()
    case_multiplex_polynomial()
    case_output_gate_swiglu()
    synaptic_case("quarks_synaptic_gate_mask", "mask", 104)
    synaptic_case("quarks_synaptic_gate_per_input", "per_input", 105)
    synaptic_case("quarks_synaptic_gate_full", "full", 106)
    case_threshold_gate()
    case_polynomial_threshold()
    case_mixed()


if __name__ == "__main__":
    main()
