#!/usr/bin/env python3
"""Regenerates the ONNX fixtures of tests/tools/quarks_run_test.cc (run: /usr/bin/python3 make_models.py).

Needs python3-onnx (1.12) and python3-numpy. Expected outputs are computed with NumPy, independently of
quarks. Seeds are fixed, so reruns are byte-identical with the same packages.

embedding_mask/: integer and boolean inputs and outputs, and output names that are not file names.
  inputs   ids  int64 [batch, seq]      token ids in [0, 10)
           mask bool  [batch, seq, 1]
  outputs  "emb/out"    float32 [batch, seq, 4] = where(mask, table[ids], 0)   -> file emb_out.npy
           "../is_pad"  bool    [batch, seq]    = ids == 0                     -> file _._is_pad.npy
           "token:type" int64   [batch, seq]    = types[ids]                   -> file token_type.npy
  The output files are named as quarks-run names them (see tools/quarks-run/output_files.hpp).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, allow_pickle=False)


def embedding_mask():
    rng = np.random.default_rng(20240607)
    table = rng.standard_normal((10, 4)).astype(np.float32)
    types = (np.arange(10, dtype=np.int64) * 7) % 3 - 1  # -1, 0, 1 in a scrambled order

    nodes = [
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0.0, np.float32))),
        helper.make_node("Constant", [], ["pad_id"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
        helper.make_node("Where", ["mask", "emb", "zero"], ["emb/out"]),
        helper.make_node("Equal", ["ids", "pad_id"], ["../is_pad"]),
        helper.make_node("Gather", ["types", "ids"], ["token:type"], axis=0),
    ]
    graph = helper.make_graph(
        nodes, "embedding_mask",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "seq", 1])],
        [helper.make_tensor_value_info("emb/out", TensorProto.FLOAT, ["batch", "seq", 4]),
         helper.make_tensor_value_info("../is_pad", TensorProto.BOOL, ["batch", "seq"]),
         helper.make_tensor_value_info("token:type", TensorProto.INT64, ["batch", "seq"])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(types, "types")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)

    ids = rng.integers(0, 10, size=(2, 5)).astype(np.int64)
    ids[0, 1] = 0  # at least one pad
    mask = rng.random((2, 5, 1)) < 0.6

    out = os.path.join(HERE, "embedding_mask")
    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    save(os.path.join(out, "inputs", "ids.npy"), ids)
    save(os.path.join(out, "inputs", "mask.npy"), mask)
    save(os.path.join(out, "outputs", "emb_out.npy"), np.where(mask, table[ids], np.float32(0)).astype(np.float32))
    save(os.path.join(out, "outputs", "_._is_pad.npy"), ids == 0)
    save(os.path.join(out, "outputs", "token_type.npy"), types[ids])


if __name__ == "__main__":
    embedding_mask()
