#!/usr/bin/python3
"""Checks every fixture in this folder and lists what the importer has to support.

For each <case>/model.onnx: runs onnx.checker.check_model (full_check with shape inference, then the plain
check if that fails), prints every node with its attributes and, for Reshape/Slice/Unsqueeze/Split/Gather
index inputs, whether they are constants or computed at run time; then evaluates the model with the small
float64 NumPy interpreter below (independent of PyTorch and of the generators' references, except that the
ai.quarks nodes reuse make_quarks_domain_models' float64 semantics) on inputs/ (and inputs_alt/) and compares
against outputs/ (and outputs_alt/).

Usage (from the repository root):  /usr/bin/python3 tests/onnx/models/check_models.py [-q] [case ...]
Exit status 1 if any check or comparison fails.
"""

import math
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep __pycache__ out of the fixture folder
sys.path.insert(0, HERE)
import make_quarks_domain_models as qd  # noqa: E402

ATOL, RTOL = 1e-4, 1e-4
_erf = np.vectorize(math.erf, otypes=[np.float64])


def widen(a):
    """Evaluate every floating tensor in float64."""
    a = np.asarray(a)
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a


def attrs_of(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def s(v):
    return v.decode() if isinstance(v, bytes) else v


def run_node(node, ins):
    op, at = node.op_type, attrs_of(node)
    if node.domain == qd.DOMAIN:
        return run_quarks_node(op, at, ins)
    assert node.domain in ("", "ai.onnx"), node.domain
    if op == "Constant":
        return [widen(numpy_helper.to_array(at["value"]))]
    if op in ("Add", "Sub", "Mul", "Equal", "Pow"):
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal, "Pow": np.power}[op]
        return [fn(ins[0], ins[1])]
    if op == "Div":
        a, b = ins
        if np.issubdtype(a.dtype, np.integer):
            return [(np.trunc(a / b)).astype(a.dtype)]
        return [a / b]
    unary = {"Erf": _erf, "Tanh": np.tanh, "Sqrt": np.sqrt, "Reciprocal": lambda x: 1.0 / x,
             "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "Neg": np.negative}
    if op in unary:
        return [unary[op](ins[0])]
    if op == "MatMul":
        return [np.matmul(ins[0], ins[1])]
    if op == "Gemm":
        a, b = ins[0], ins[1]
        a = a.T if at.get("transA", 0) else a
        b = b.T if at.get("transB", 0) else b
        y = at.get("alpha", 1.0) * (a @ b)
        if len(ins) > 2 and ins[2] is not None:
            y = y + at.get("beta", 1.0) * ins[2]
        return [y]
    if op == "Shape":
        shape = np.array(ins[0].shape, dtype=np.int64)
        return [shape[at.get("start", 0):at.get("end", None)]]
    if op == "Gather":
        return [np.take(ins[0], ins[1], axis=at.get("axis", 0))]
    if op == "Unsqueeze":
        y = ins[0]
        axes = sorted(int(a) % (y.ndim + len(ins[1])) for a in ins[1])
        for a in axes:
            y = np.expand_dims(y, a)
        return [y]
    if op == "Concat":
        return [np.concatenate(ins, axis=at["axis"])]
    if op == "Reshape":
        assert not at.get("allowzero", 0)
        x, shape = ins[0], [int(v) for v in ins[1]]
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Transpose":
        return [np.transpose(ins[0], at.get("perm"))]
    if op == "Softmax":
        x = ins[0]
        axis = at.get("axis", -1)
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return [e / np.sum(e, axis=axis, keepdims=True)]
    if op == "LayerNormalization":
        x, scale = ins[0], ins[1]
        bias = ins[2] if len(ins) > 2 else None
        axis = at.get("axis", -1) % x.ndim
        axes = tuple(range(axis, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mean) / np.sqrt(var + at.get("epsilon", 1e-5)) * scale
        return [y + bias if bias is not None else y]
    if op == "ReduceMean":
        axes = tuple(at["axes"]) if "axes" in at else None
        return [ins[0].mean(axis=axes, keepdims=bool(at.get("keepdims", 1)))]
    if op == "Cast":
        to = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[at["to"]]  # onnx 1.12 API
        return [widen(ins[0].astype(to))]
    if op == "Slice":
        x, starts, ends = ins[0], ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            n = x.shape[ax]
            st, en = int(st), int(en)
            st = max(0, min(n, st + n if st < 0 else st))
            en = max(0, min(n, en + n if en < 0 else en))
            index[int(ax)] = slice(st, en, int(sp))
        return [x[tuple(index)]]
    if op == "Where":
        return [np.where(ins[0], ins[1], ins[2])]
    if op == "Split":
        x = ins[0]
        axis = at.get("axis", 0)
        sizes = ins[1] if len(ins) > 1 and ins[1] is not None else [x.shape[axis] // len(node.output)] * len(
            node.output)
        bounds = np.cumsum(sizes)[:-1]
        return list(np.split(x, bounds, axis=axis))
    raise NotImplementedError(op)


def run_quarks_node(op, at, ins):
    at = {k: s(v) for k, v in at.items()}
    if op == "Multiplex":
        return [qd.ref_multiplex(ins[0], ins[1], at.get("lambda", 1.0), at.get("activation", "identity"),
                                 at.get("alpha", 0.01), at.get("coefficients"))]
    if op == "OutputGate":
        return [qd.ref_output_gate(ins[0], ins[1], at.get("f", "identity"), at.get("g", "identity"),
                                   at.get("f_alpha", 0.01), at.get("g_alpha", 0.01), at.get("f_coefficients"),
                                   at.get("g_coefficients"))]
    if op == "SynapticGate":
        return [qd.ref_synaptic_gate(*ins)]
    if op == "ThresholdGate":
        return [qd.ref_threshold_gate(ins[0], at.get("kind", "heaviside"), at.get("threshold", 0.0))]
    if op == "PolynomialThreshold":
        return [qd.ref_polynomial_threshold(ins[0], at["coefficients"], at.get("kind", "heaviside"))]
    raise NotImplementedError("ai.quarks::" + op)


def evaluate(model, feeds):
    env = {t.name: widen(numpy_helper.to_array(t)) for t in model.graph.initializer}
    env.update({k: widen(v) for k, v in feeds.items()})
    for node in model.graph.node:
        ins = [env[i] if i else None for i in node.input]
        outs = run_node(node, ins)
        for name, value in zip(node.output, outs):
            if name:
                env[name] = value
    return {o.name: env[o.name] for o in model.graph.output}


def describe(model):
    """One line per node: op type, attributes, and where each input comes from: a graph input (its name),
    init[shape] (an initializer), const[shape]=value (a Constant node) or the producing op's type (computed)."""
    graph_inputs = {i.name for i in model.graph.input}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    producers = {}
    constants = {}
    lines = []
    for node in model.graph.node:
        shown = {}
        for k, v in attrs_of(node).items():
            if isinstance(v, onnx.TensorProto):
                arr = numpy_helper.to_array(v)
                v = f"{arr.dtype}{list(arr.shape)}=" + (str(arr.tolist()) if arr.size <= 8 else "...")
            shown[k] = s(v) if not isinstance(v, list) else [s(x) for x in v]
        srcs = []
        for i in node.input:
            if not i:
                srcs.append("-")
            elif i in graph_inputs:
                srcs.append(i)
            elif i in inits:
                srcs.append(f"init{inits[i]}")
            elif i in constants:
                srcs.append(constants[i])
            else:
                srcs.append(producers[i])
        for o in node.output:
            producers[o] = node.op_type
        if node.op_type == "Constant":
            arr = numpy_helper.to_array(node.attribute[0].t)
            constants[node.output[0]] = f"const{list(arr.shape)}=" + (str(arr.tolist()) if arr.size <= 8 else "...")
            continue  # shown where it is used
        dom = f"{node.domain}::" if node.domain else ""
        attrs = " " + str(shown) if shown else ""
        lines.append(f"    {dom}{node.op_type}({', '.join(srcs)}){attrs}")
    return lines


def load_dir(folder):
    return {f[:-4]: np.load(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".npy")}


def check_case(case, quiet):
    folder = os.path.join(HERE, case)
    model = onnx.load(os.path.join(folder, "model.onnx"))
    ok = True
    try:
        onnx.checker.check_model(model, full_check=True)
        checker = "check_model(full_check=True) passed"
    except onnx.checker.ValidationError as e:
        onnx.checker.check_model(model)
        checker = f"full_check failed ({str(e).splitlines()[0]}), plain check_model passed"
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs)
    ins = ", ".join(f"{i.name}{[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]}"
                    f":{onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type)}" for i in model.graph.input)
    print(f"== {case} ({size / 1024:.1f} KiB): {checker}")
    print(f"   inputs {ins}; {len(model.graph.initializer)} initializers; ops {sorted({n.op_type for n in model.graph.node})}")
    if not quiet:
        print("\n".join(describe(model)))
    for suffix in ("", "_alt"):
        in_dir = os.path.join(folder, "inputs" + suffix)
        if not os.path.isdir(in_dir):
            continue
        feeds = load_dir(in_dir)
        expected = load_dir(os.path.join(folder, "outputs" + suffix))
        got = evaluate(model, feeds)
        assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
        for name, want in expected.items():
            assert want.dtype == np.float32 and want.flags.c_contiguous
            have = got[name]
            err = np.abs(have - want.astype(np.float64))
            bad = err > ATOL + RTOL * np.abs(want)
            status = "ok" if not bad.any() and have.shape == want.shape else "MISMATCH"
            ok &= status == "ok"
            print(f"   inputs{suffix} -> {name}{list(want.shape)}: max|numpy64 - stored| = {err.max():.2e} {status}")
    return ok


def main(argv):
    quiet = "-q" in argv
    cases = [a for a in argv if a != "-q"] or sorted(
        d for d in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, d, "model.onnx")))
    ok = all([check_case(c, quiet) for c in cases])
    print("all fixtures consistent" if ok else "SOME FIXTURES FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
