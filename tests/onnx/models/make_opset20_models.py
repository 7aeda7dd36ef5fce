#!/usr/bin/python3
"""Gelu (default domain, opset 20) in both forms, written with onnx.helper (onnx 1.12 has no schema
for it, so the checker is not run); expected outputs in float64 NumPy.

Run: /usr/bin/python3 tests/onnx/models/make_opset20_models.py
"""
import json
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))


def gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def main():
    case = os.path.join(HERE, "gelu_opset20")
    os.makedirs(os.path.join(case, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(case, "outputs"), exist_ok=True)
    nodes = [
        helper.make_node("Gelu", ["x"], ["y_erf"], name="gelu_erf"),
        helper.make_node("Gelu", ["x"], ["y_tanh"], name="gelu_tanh", approximate="tanh"),
    ]
    graph = helper.make_graph(
        nodes, "gelu_opset20",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 37])],
        [helper.make_tensor_value_info("y_erf", TensorProto.FLOAT, ["batch", 37]),
         helper.make_tensor_value_info("y_tanh", TensorProto.FLOAT, ["batch", 37])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="quarks-tests")
    model.ir_version = 8
    onnx.save(model, os.path.join(case, "model.onnx"))
    rng = np.random.default_rng(20)
    x = (rng.standard_normal((3, 37)) * 3).astype(np.float32)
    np.save(os.path.join(case, "inputs", "x.npy"), x)
    xd = x.astype(np.float64)
    np.save(os.path.join(case, "outputs", "y_erf.npy"), gelu_erf(xd).astype(np.float32))
    np.save(os.path.join(case, "outputs", "y_tanh.npy"), gelu_tanh(xd).astype(np.float32))
    with open(os.path.join(case, "info.json"), "w") as f:
        json.dump({"source": "onnx.helper", "opset": 20,
                   "description": "Gelu of opset 20, approximate 'none' and 'tanh'; float64 NumPy reference"}, f,
                  indent=2)


if __name__ == "__main__":
    main()
