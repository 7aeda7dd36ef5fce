#!/usr/bin/python3
"""Runs one model of make_models.py in PyTorch (CPU) and prints its latency as JSON.

  torch_run.py MODEL.onnx --input NAME=FILE.npy ... [--threads N] [--warmup W] [--iters I] [--output-dir DIR]
               [--mode eager|mkldnn]

The same command line as ort_run.js, so compare.py drives both alike. MODEL.onnx names the model: its
entry in the folder's models.json gives the module (peer_models.build) and its weights (the state_dict
make_models.py saved beside the ONNX file; a folder exported before the weights were saved falls back
to rebuilding them from the fixed seed, which gives the same weights on the same PyTorch version).

Modes: "eager" (the default) runs the module as it is; "mkldnn" first converts it with
torch.utils.mkldnn.to_mkldnn, PyTorch's own CPU inference conversion, which swaps every nn.Linear for
a oneDNN one (the rest stays eager ATen). Debian's python3-torch links the generic libblas.so.3: install
libopenblas0-openmp, or eager fp32 products run on the reference (netlib) BLAS at a few GFLOP/s.

PyTorch runs with torch.set_num_threads(N), one inter-op thread, under torch.inference_mode(). Each of
the --iters timed runs is the forward call alone, timed with time.perf_counter after --warmup untimed
runs. Prints one JSON object:
  {"model", "threads", "p50_ms", "mean_ms", "min_ms", "max_ms", "runs", "mode", "weights", "blas",
   "torch_version"}
p50 is the nearest-rank median, as in quarks-bench and ort_run.js. With --output-dir, the outputs of the
last run are written as DIR/<output name>.npy (float32, C order). Exit status: 0 success, 1 error.
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.utils.mkldnn

import peer_models


def fail(message):
    print(f"torch_run: error: {message}", file=sys.stderr)
    sys.exit(1)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="MODEL.onnx written by make_models.py (names the model and its folder)")
    parser.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--mode", choices=("mkldnn", "eager"), default="eager",
                        help="mkldnn: nn.Linear through oneDNN (torch.utils.mkldnn.to_mkldnn); eager: as built")
    args = parser.parse_args()
    if args.threads < 1 or args.warmup < 0 or args.iters < 1:
        parser.error("--threads and --iters must be >= 1, --warmup >= 0")
    return args


def manifest_entry(model_path):
    """(name, entry) of the models.json entry whose file is model_path."""
    folder, file = os.path.split(os.path.abspath(model_path))
    try:
        with open(os.path.join(folder, "models.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{folder}/models.json: {e} (run make_models.py)")
    for name, entry in manifest.items():
        if entry.get("file") == file:
            return name, entry
    fail(f"{model_path} is not listed in {folder}/models.json")


def load_module(name, entry, folder):
    """The model's module with the exported weights; also says where the weights came from."""
    try:
        module = peer_models.build(name)
    except KeyError as e:
        fail(str(e))
    state = os.path.join(folder, entry.get("torch_state", name + ".pt"))
    if not os.path.exists(state):
        return module, "seed"
    module.load_state_dict(torch.load(state))
    return module, "state_dict"


def load_inputs(pairs, expected):
    """The input tensors in forward()'s argument order, from NAME=FILE.npy pairs."""
    given = {}
    for pair in pairs:
        name, eq, path = pair.partition("=")
        if not name or not eq or not path:
            fail(f"--input: '{pair}' is not NAME=FILE.npy")
        if name not in expected:
            fail(f"unknown input '{name}' (the model's inputs: {', '.join(expected)})")
        if name in given:
            fail(f"input '{name}' is given more than once")
        try:
            array = np.load(path)
        except (OSError, ValueError) as e:
            fail(f"{path}: {e}")
        if list(array.shape) != list(expected[name]):
            fail(f"input '{name}': shape {list(array.shape)}, the model needs {expected[name]}")
        given[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    missing = [n for n in expected if n not in given]
    if missing:
        fail(f"missing input '{missing[0]}'; give --input {missing[0]}=FILE.npy")
    return [given[n] for n in expected]


def blas_info():
    """PyTorch's BLAS as its build reports it (BLAS_INFO=...), e.g. "generic" for the system libblas.so.3."""
    match = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return match.group(1) if match else "unknown"


def nearest_rank(sorted_values, p):
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def time_runs(module, inputs, warmup, iters):
    """Per-run milliseconds of iters forward calls after warmup ones, and the last outputs."""
    samples = []
    with torch.inference_mode():
        outputs = None
        for _ in range(warmup):
            outputs = module(*inputs)
        for _ in range(iters):
            t0 = time.perf_counter()
            outputs = module(*inputs)
            samples.append((time.perf_counter() - t0) * 1e3)
    return samples, outputs


def write_outputs(folder, names, outputs):
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    if len(outputs) != len(names):
        fail(f"the module returned {len(outputs)} outputs, models.json names {len(names)}")
    os.makedirs(folder, exist_ok=True)
    for name, tensor in zip(names, outputs):
        np.save(os.path.join(folder, name + ".npy"), tensor.detach().numpy().astype(np.float32, copy=False))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    name, entry = manifest_entry(args.model)
    module, weights = load_module(name, entry, os.path.dirname(os.path.abspath(args.model)))
    if args.mode == "mkldnn":
        if not torch.backends.mkldnn.is_available():
            fail("this PyTorch has no MKL-DNN (oneDNN); use --mode eager")
        module = torch.utils.mkldnn.to_mkldnn(module)
    inputs = load_inputs(args.input, entry["inputs"])
    samples, outputs = time_runs(module, inputs, args.warmup, args.iters)
    if args.output_dir:
        write_outputs(args.output_dir, entry.get("outputs", ["y"]), outputs)
    s = sorted(samples)
    print(json.dumps({"model": args.model, "threads": args.threads, "p50_ms": nearest_rank(s, 50),
                      "mean_ms": sum(s) / len(s), "min_ms": s[0], "max_ms": s[-1], "runs": len(s), "mode": args.mode,
                      "weights": weights, "blas": blas_info(), "torch_version": torch.__version__}))


if __name__ == "__main__":
    main()
