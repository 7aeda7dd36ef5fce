#!/usr/bin/python3
"""quarks beside ONNX Runtime (onnxruntime-node, CPU) on the same ONNX files and the same inputs.

For each model of make_models.py and each thread count:
  1. agreement: quarks-run and ort_run.js run the model on the same random inputs (uniform in [-1, 1],
     fixed seed); every output must agree to max|quarks - ORT| <= tolerance * max|ORT| (1e-4);
  2. timing, interleaved: --rounds rounds of (quarks-bench --model, then ort_run.js), each a fresh
     process that compiles / creates its session, warms up and reports the median of --iters runs
     (quarks: steady_clock around Session::run into preallocated outputs; ORT: its profiler's
     model_run durations, so Node's copies are left out). The iteration count is calibrated per
     model and thread count so that one measurement takes about --target-ms.
Prints a table (medians over rounds of each engine's p50, the median of the per-round ratios
quarks/ORT — below 1 means quarks is faster — with its range, and best/best: the fastest quarks round
over the fastest ORT round, which other work on a shared machine disturbs least) and writes the same,
with every round, as JSON (--json).

Needs: a release build (quarks-bench, quarks-run), Debian's python3-numpy python3-torch python3-onnx
nodejs npm, and `ONNXRUNTIME_NODE_INSTALL=skip npm ci` in bench/peers. See bench/README.md.

Usage (repository root):  /usr/bin/python3 bench/peers/compare.py [--build build/release] [--threads 1,2]
"""

import argparse
import collections
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEED = 20240602


def fail(message):
    sys.exit(f"compare.py: error: {message}")


def run(cmd, what):
    """Runs cmd, returns its stdout; stops with its stderr if it fails."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        fail(f"{what} failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()}")
    return r.stdout


def load_average():
    """The 1-minute load average (another job on the machine shows here), or None."""
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Tools:
    def __init__(self, build):
        self.bench = os.path.join(build, "tools", "quarks-bench")
        self.run = os.path.join(build, "tools", "quarks-run", "quarks-run")
        for exe in (self.bench, self.run):
            if not os.access(exe, os.X_OK):
                fail(f"{exe} not found: build quarks first (cmake --preset release && cmake --build --preset release)")
        if not os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")):
            fail(f"onnxruntime-node is not installed: run (cd {HERE} && ONNXRUNTIME_NODE_INSTALL=skip npm ci)")
        self.ort = ["node", os.path.join(HERE, "ort_run.js")]

    def quarks_outputs(self, model, inputs, threads, out_dir):
        run([self.run, model, "--output-dir", out_dir, "--threads", str(threads)] + input_args(inputs), "quarks-run")

    def quarks_graph(self, model, inputs, out_dir):
        """The graph after fusion, compiled with the inputs' shapes (quarks-run also runs it once)."""
        return run([self.run, model, "--print-graph", "--output-dir", out_dir] + input_args(inputs),
                   "quarks-run --print-graph")

    def quarks_time(self, model, inputs, threads, warmup, iters):
        out = run([self.bench, "--model", model, "--threads", str(threads), "--warmup", str(warmup), "--iters",
                   str(iters), "--format", "json"] + input_args(inputs), "quarks-bench")
        j = json.loads(out)
        return j["runs"][0]["p50_ms"], j.get("flops", 0), j["quarks_version"]

    def ort_run(self, model, inputs, threads, warmup, iters, out_dir=None, optimized=None):
        cmd = self.ort + [model, "--threads", str(threads), "--warmup", str(warmup), "--iters", str(iters)]
        if out_dir:
            cmd += ["--output-dir", out_dir]
        if optimized:
            cmd += ["--optimized-model", optimized]
        return json.loads(run(cmd + input_args(inputs), "ort_run.js"))


def input_args(inputs):
    args = []
    for name, path in inputs.items():
        args += ["--input", f"{name}={path}"]
    return args


def make_inputs(spec, folder):
    """Uniform random float32 in [-1, 1] for every input, from a fixed seed; {name: path}."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(SEED)
    paths = {}
    for name, shape in spec.items():
        paths[name] = os.path.join(folder, name + ".npy")
        np.save(paths[name], rng.uniform(-1.0, 1.0, size=shape).astype(np.float32))
    return paths


def agreement(quarks_dir, ort_dir):
    """max |quarks - ORT| / max |ORT| over the outputs ORT wrote."""
    worst = {"max_abs_diff": 0.0, "scale": 0.0, "rel": 0.0}
    names = sorted(f for f in os.listdir(ort_dir) if f.endswith(".npy"))
    if not names:
        fail(f"ORT wrote no outputs to {ort_dir}")
    for f in names:
        q_path = os.path.join(quarks_dir, f)
        if not os.path.exists(q_path):
            fail(f"quarks wrote no {f} (it wrote {sorted(os.listdir(quarks_dir))})")
        q, o = np.load(q_path).astype(np.float64), np.load(os.path.join(ort_dir, f)).astype(np.float64)
        if q.shape != o.shape:
            fail(f"{f}: quarks gives shape {q.shape}, ORT {o.shape}")
        diff, scale = float(np.max(np.abs(q - o))), float(np.max(np.abs(o)))
        rel = diff / scale if scale > 0 else diff
        if rel >= worst["rel"]:
            worst = {"max_abs_diff": diff, "scale": scale, "rel": rel}
    return worst


def op_counts(onnx_path):
    import onnx  # only for this summary

    counts = collections.Counter()
    for n in onnx.load(onnx_path, load_external_data=False).graph.node:
        counts[(n.domain + ":" if n.domain and n.domain != "ai.onnx" else "") + n.op_type] += 1
    return dict(sorted(counts.items()))


def quarks_op_counts(described):
    counts = collections.Counter()
    for line in described.splitlines():
        if " = " in line and not line.startswith("output "):
            counts[line.split(" = ", 1)[1].split("(", 1)[0]] += 1
    return dict(sorted(counts.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "release"), help="quarks build folder")
    parser.add_argument("--models", default=os.path.join(HERE, "models"), help="folder of make_models.py's output")
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (>= 1)")
    parser.add_argument("--target-ms", type=float, default=1500, help="time one measurement should take")
    parser.add_argument("--min-iters", type=int, default=10)
    parser.add_argument("--max-iters", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before each measurement")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |quarks - ORT| / max |ORT|")
    parser.add_argument("--json", default=None, help="JSON results file (default: bench/peers/results/DATE.json)")
    args = parser.parse_args()
    if args.rounds < 1:
        fail("--rounds must be >= 1")
    threads = [int(t) for t in args.threads.split(",")]
    tools = Tools(os.path.abspath(args.build))

    manifest_path = os.path.join(args.models, "models.json")
    if not os.path.exists(manifest_path):
        print(f"exporting the models into {args.models} ...", flush=True)
        run([sys.executable, os.path.join(HERE, "make_models.py"), "--out", args.models], "make_models.py")
    with open(manifest_path) as f:
        manifest = json.load(f)
    names = [n for n in manifest if not args.only or n in args.only.split(",")]
    if not names:
        fail(f"no model matches --only {args.only} (models: {', '.join(manifest)})")

    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    load_before = load_average()
    work = tempfile.mkdtemp(prefix="quarks_peers_")
    rows, versions, graphs = [], {}, {}
    for name in names:
        entry = manifest[name]
        model = os.path.join(args.models, entry["file"])
        inputs = make_inputs(entry["inputs"], os.path.join(work, name, "inputs"))
        optimized = os.path.join(work, name, "ort_optimized.onnx")
        described = tools.quarks_graph(model, inputs, os.path.join(work, name, "graph"))
        graphs[name] = {"quarks": quarks_op_counts(described)}
        for t in threads:
            print(f"{name}, {t} thread(s): agreement ...", end="", flush=True)
            q_dir, o_dir = os.path.join(work, name, f"quarks_t{t}"), os.path.join(work, name, f"ort_t{t}")
            tools.quarks_outputs(model, inputs, t, q_dir)
            ort = tools.ort_run(model, inputs, t, 0, 1, out_dir=o_dir, optimized=optimized if t == threads[0] else None)
            versions["onnxruntime"] = ort["ort_version"]
            if t == threads[0]:
                graphs[name]["onnxruntime"] = op_counts(optimized)
            agree = agreement(q_dir, o_dir)
            agree["ok"] = agree["rel"] < args.tolerance
            print(f" rel diff {agree['rel']:.2e}{'' if agree['ok'] else ' DISAGREE'}; timing", end="", flush=True)

            p50, _, _ = tools.quarks_time(model, inputs, t, 2, 5)
            iters = int(min(args.max_iters, max(args.min_iters, round(args.target_ms / max(p50, 1e-3)))))
            per_round, flops = [], 0
            for _ in range(args.rounds):
                q, flops, versions["quarks"] = tools.quarks_time(model, inputs, t, args.warmup, iters)
                o = tools.ort_run(model, inputs, t, args.warmup, iters)
                per_round.append({"quarks_p50_ms": q, "ort_p50_ms": o["p50_ms"], "ratio": q / o["p50_ms"],
                                  "ort_wall_p50_ms": o["wall_p50_ms"]})
                print(".", end="", flush=True)
            ratios = [r["ratio"] for r in per_round]
            row = {
                "model": name, "description": entry["description"], "threads": t, "iters": iters,
                "quarks_p50_ms": statistics.median(r["quarks_p50_ms"] for r in per_round),
                "ort_p50_ms": statistics.median(r["ort_p50_ms"] for r in per_round),
                "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "ratio_of_best": min(r["quarks_p50_ms"] for r in per_round) / min(r["ort_p50_ms"] for r in per_round),
                "flops": flops, "agreement": agree, "rounds": per_round,
            }
            rows.append(row)
            print(f" quarks {row['quarks_p50_ms']:.3f} ms, ORT {row['ort_p50_ms']:.3f} ms, ratio {row['ratio']:.2f}",
                  flush=True)

    shutil.rmtree(work, ignore_errors=True)
    load_after = load_average()
    print()
    print(f"quarks {versions.get('quarks', '?')} vs ONNX Runtime {versions.get('onnxruntime', '?')} (CPU), {date}, "
          f"{cpu_name()}, {os.cpu_count()} cores; {args.rounds} interleaved rounds, medians")
    print(f"1-minute load average before: {load_before}, after: {load_after} (other work on the machine skews both "
          "engines; compare ratios)")
    header = f"{'model':<16} {'threads':>7} {'quarks p50 ms':>14} {'ORT p50 ms':>11} {'quarks/ORT':>10} " \
             f"{'(min-max)':>11} {'best/best':>9} {'quarks GF/s':>11} {'ORT GF/s':>9} {'rel diff':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        gf = lambda ms: f"{r['flops'] / ms / 1e6:.1f}" if r["flops"] > 0 else "-"  # noqa: E731
        flag = "" if r["agreement"]["ok"] else " DISAGREE"
        print(f"{r['model']:<16} {r['threads']:>7} {r['quarks_p50_ms']:>14.3f} {r['ort_p50_ms']:>11.3f} "
              f"{r['ratio']:>10.2f} {r['ratio_min']:>5.2f}-{r['ratio_max']:<5.2f} {r['ratio_of_best']:>9.2f} "
              f"{gf(r['quarks_p50_ms']):>11} "
              f"{gf(r['ort_p50_ms']):>9} {r['agreement']['rel']:>9.1e}{flag}")
    print("\nGraphs after optimisation (op: count):")
    for name, g in graphs.items():
        for engine in ("quarks", "onnxruntime"):
            ops = ", ".join(f"{op} {c}" for op, c in g.get(engine, {}).items())
            print(f"  {name:<16} {engine:<12} {ops}")

    result = {"date": date, "host": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_before": load_before,
                                     "load_after": load_after}, "versions": versions,
              "rounds": args.rounds, "tolerance": args.tolerance, "rows": rows, "graphs": graphs}
    path = args.json or os.path.join(HERE, "results", date.replace(":", "") + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"\nJSON: {path}")
    if not all(r["agreement"]["ok"] for r in rows):
        fail("quarks and ONNX Runtime disagree beyond the tolerance (DISAGREE rows above)")


if __name__ == "__main__":
    main()
