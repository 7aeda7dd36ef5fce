#!/usr/bin/python3
"""Exports the ONNX models of the peer comparison (bench/peers/compare.py) into a folder.

The models are the PyTorch modules of peer_models.py (float32, batch 1, static shapes, eval mode,
PyTorch's default initialisation from a fixed seed), exported with opset 17. Beside each ONNX file the
module's state_dict is saved, so torch_run.py (the PyTorch peer) runs the same weights.

Writes DIR/<name>.onnx, DIR/<name>.pt and DIR/models.json:
  {name: {"file", "torch_state", "inputs": {name: shape}, "outputs": [name], "description"}}
Needs Debian's python3-torch (1.13) and python3-onnx (1.12).

Usage:  /usr/bin/python3 bench/peers/make_models.py [--out DIR] [--only NAME,...]   (default: bench/peers/models)
"""

import argparse
import json
import os

import onnx
import torch

import peer_models

OPSET = 17


def export(name, folder):
    """Exports one model to folder/<name>.onnx and saves its weights; returns its manifest entry."""
    spec = peer_models.SPECS[name]
    module = peer_models.build(name)
    path = os.path.join(folder, name + ".onnx")
    # The example inputs only trace the graph (static shapes); compare.py makes the timed inputs.
    example = tuple(torch.rand(*shape) * 2 - 1 for shape in spec.inputs.values())
    torch.onnx.export(module, example, path, opset_version=OPSET, input_names=list(spec.inputs),
                      output_names=spec.outputs, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    torch.save(module.state_dict(), os.path.join(folder, name + ".pt"))
    print(f"{name}: {path}")
    return {"file": name + ".onnx", "torch_state": name + ".pt", "inputs": spec.inputs, "outputs": spec.outputs,
            "description": spec.description}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = parser.parse_args()
    names = [n for n in peer_models.SPECS if not args.only or n in args.only.split(",")]
    if not names:
        parser.error(f"no model matches --only {args.only} (models: {', '.join(peer_models.SPECS)})")
    os.makedirs(args.out, exist_ok=True)
    manifest = {name: export(name, args.out) for name in names}
    with open(os.path.join(args.out, "models.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
