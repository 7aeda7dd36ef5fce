#!/usr/bin/python3
"""quarks beside its peers, ONNX Runtime (onnxruntime-node, CPU) and PyTorch, on the same models and inputs.

For each model of make_models.py and each thread count:
  1. agreement: quarks-run and every peer run the model once on the same random inputs (uniform in
     [-1, 1], fixed seed); every output must agree to max|quarks - peer| <= tolerance * max|peer| (1e-4);
  2. timing, interleaved: --rounds rounds of (quarks-bench --model, then each peer; the order rotates
     by one engine every round), each a fresh process that compiles / creates its session, warms up and
     reports the median of --iters runs (quarks: steady_clock around Session::run into preallocated
     outputs; ORT: its profiler's model_run durations, so Node's copies are left out; PyTorch:
     time.perf_counter around the module's forward call under torch.inference_mode). The iteration
     count is calibrated per model and thread count so that one quarks measurement takes about
     --target-ms; every engine runs the same count.
Peers (--peers): "ort" is ONNX Runtime on the ONNX file (ort_run.js); "torch" is the PyTorch module the
ONNX file was exported from, with the same weights (torch_run.py, --torch-mode eager or mkldnn).
Prints a table (medians over rounds of each engine's p50; per peer the median of the per-round ratios
quarks/peer — below 1 means quarks is faster — with its range, and best/best: the fastest quarks round
over the peer's fastest round, which other work on a shared machine disturbs least) and writes the same,
with every round, as JSON (--json).

Needs: a release build (quarks-bench, quarks-run), Debian's python3-numpy python3-torch python3-onnx,
and for the "ort" peer nodejs npm and `ONNXRUNTIME_NODE_INSTALL=skip npm ci` in bench/peers.
See bench/peers/README.md.

Usage (repository root):  /usr/bin/python3 bench/peers/compare.py [--build build/release] [--threads 1,2]
                              [--peers ort,torch] [--only swiglu_mlp] [--rounds 5] [--json FILE]
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


PEERS = {"ort": "ONNX Runtime", "torch": "PyTorch"}  # --peers names and their display names
SHORT = {"quarks": "quarks", "ort": "ORT", "torch": "torch"}  # table column names


class Tools:
    """The commands of quarks and of the peers, all timing one ONNX model file on .npy inputs."""

    def __init__(self, build, peers, torch_mode):
        self.bench = os.path.join(build, "tools", "quarks-bench")
        self.run = os.path.join(build, "tools", "quarks-run", "quarks-run")
        for exe in (self.bench, self.run):
            if not os.access(exe, os.X_OK):
                fail(f"{exe} not found: build quarks first (cmake --preset release && cmake --build --preset release)")
        self.peer_cmd = {}
        if "ort" in peers:
            if not os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")):
                fail(f"onnxruntime-node is not installed: run (cd {HERE} && ONNXRUNTIME_NODE_INSTALL=skip npm ci)")
            self.peer_cmd["ort"] = ["node", os.path.join(HERE, "ort_run.js")]
        if "torch" in peers:
            self.peer_cmd["torch"] = [sys.executable, os.path.join(HERE, "torch_run.py"), "--mode", torch_mode]

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

    def peer_run(self, peer, model, inputs, threads, warmup, iters, out_dir=None, optimized=None):
        """Runs a peer's runner (same options for all); its JSON summary. optimized: ORT only."""
        cmd = self.peer_cmd[peer] + [model, "--threads", str(threads), "--warmup", str(warmup), "--iters", str(iters)]
        if out_dir:
            cmd += ["--output-dir", out_dir]
        if optimized and peer == "ort":
            cmd += ["--optimized-model", optimized]
        return json.loads(run(cmd + input_args(inputs), PEERS[peer]))


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


def agreement(quarks_dir, peer_dir):
    """max |quarks - peer| / max |peer| over the outputs the peer wrote (the worst output)."""
    worst = {"max_abs_diff": 0.0, "scale": 0.0, "rel": 0.0}
    names = sorted(f for f in os.listdir(peer_dir) if f.endswith(".npy")) if os.path.isdir(peer_dir) else []
    if not names:
        fail(f"the peer wrote no outputs to {peer_dir}")
    for f in names:
        q_path = os.path.join(quarks_dir, f)
        if not os.path.exists(q_path):
            fail(f"quarks wrote no {f} (it wrote {sorted(os.listdir(quarks_dir))})")
        q, p = np.load(q_path).astype(np.float64), np.load(os.path.join(peer_dir, f)).astype(np.float64)
        if q.shape != p.shape:
            fail(f"{f}: quarks gives shape {q.shape}, the peer {p.shape} ({peer_dir})")
        diff, scale = float(np.max(np.abs(q - p))), float(np.max(np.abs(p)))
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


def peer_version(peer, result):
    if peer == "ort":
        return result["ort_version"]
    return f"{result['torch_version']} ({result['mode']}, BLAS {result['blas']}, weights from {result['weights']})"


def check_agreement(tools, peers, model, inputs, threads, work, tolerance, optimized):
    """Runs quarks and every peer once; {peer: agreement} and {peer: version}."""
    q_dir = os.path.join(work, f"quarks_t{threads}")
    tools.quarks_outputs(model, inputs, threads, q_dir)
    agree, versions = {}, {}
    for peer in peers:
        p_dir = os.path.join(work, f"{peer}_t{threads}")
        result = tools.peer_run(peer, model, inputs, threads, 0, 1, out_dir=p_dir, optimized=optimized)
        versions[peer] = peer_version(peer, result)
        agree[peer] = agreement(q_dir, p_dir)
        agree[peer]["ok"] = agree[peer]["rel"] < tolerance
    return agree, versions


def timed_rounds(tools, peers, model, inputs, threads, warmup, iters, rounds):
    """Interleaved rounds; each round's order is the engines rotated by the round number. A list of
    {"quarks_p50_ms", "<peer>_p50_ms", "<peer>_ratio" (quarks/peer), ...} and (flops, quarks version)."""
    engines = ["quarks"] + peers
    per_round, flops, version = [], 0, "?"
    for r in range(rounds):
        shift = r % len(engines)
        entry = {}
        for engine in engines[shift:] + engines[:shift]:
            if engine == "quarks":
                entry["quarks_p50_ms"], flops, version = tools.quarks_time(model, inputs, threads, warmup, iters)
            else:
                result = tools.peer_run(engine, model, inputs, threads, warmup, iters)
                entry[f"{engine}_p50_ms"] = result["p50_ms"]
                if "wall_p50_ms" in result:
                    entry[f"{engine}_wall_p50_ms"] = result["wall_p50_ms"]
        for peer in peers:
            entry[f"{peer}_ratio"] = entry["quarks_p50_ms"] / entry[f"{peer}_p50_ms"]
        entry["order"] = engines[shift:] + engines[:shift]
        per_round.append(entry)
        print(".", end="", flush=True)
    return per_round, flops, version


def summarise(per_round, peers, agree):
    """Medians over the rounds: quarks' p50 and, per peer, its p50 and the ratios quarks/peer."""
    quarks = [r["quarks_p50_ms"] for r in per_round]
    row = {"quarks_p50_ms": statistics.median(quarks), "peers": {}}
    for peer in peers:
        times = [r[f"{peer}_p50_ms"] for r in per_round]
        ratios = [r[f"{peer}_ratio"] for r in per_round]
        row["peers"][peer] = {
            "p50_ms": statistics.median(times), "ratio": statistics.median(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "ratio_of_best": min(quarks) / min(times), "agreement": agree[peer]}
    return row


def print_table(rows, peers):
    cols = [f"{'model':<16} {'threads':>7} {'quarks ms':>10}"]
    for peer in peers:
        s = SHORT[peer]
        cols.append(f"{s + ' ms':>10} {'q/' + s:>8} {'(min-max)':>11} {'best/best':>9}")
    cols.append(f"{'quarks GF/s':>11}" + "".join(f" {SHORT[p] + ' GF/s':>10}" for p in peers))
    cols.append("rel diff " + " ".join(f"{SHORT[p]:>7}" for p in peers))
    header = " | ".join(cols)
    print(header)
    print("-" * len(header))
    for r in rows:
        gf = lambda ms: f"{r['flops'] / ms / 1e6:.1f}" if r["flops"] > 0 else "-"  # noqa: E731
        line = [f"{r['model']:<16} {r['threads']:>7} {r['quarks_p50_ms']:>10.3f}"]
        for peer in peers:
            p = r["peers"][peer]
            line.append(f"{p['p50_ms']:>10.3f} {p['ratio']:>8.2f} {p['ratio_min']:>5.2f}-{p['ratio_max']:<5.2f} "
                        f"{p['ratio_of_best']:>9.2f}")
        line.append(f"{gf(r['quarks_p50_ms']):>11}" + "".join(f" {gf(r['peers'][p]['p50_ms']):>10}" for p in peers))
        diffs = " ".join(f"{r['peers'][p]['agreement']['rel']:>7.1e}" for p in peers)
        bad = [SHORT[p] for p in peers if not r["peers"][p]["agreement"]["ok"]]
        line.append(f"{'':9}{diffs}" + (f" DISAGREE ({', '.join(bad)})" if bad else ""))
        print(" | ".join(line))


def parse_peers(text):
    peers = [p for p in text.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers or len(set(peers)) != len(peers):
        fail(f"--peers '{text}': give distinct names among {', '.join(PEERS)}")
    return peers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "release"), help="quarks build folder")
    parser.add_argument("--models", default=os.path.join(HERE, "models"), help="folder of make_models.py's output")
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--peers", default="ort,torch", help="comma-separated peers among: ort, torch")
    parser.add_argument("--torch-mode", choices=("mkldnn", "eager"), default="eager",
                        help="PyTorch peer: nn.Linear through oneDNN (torch.utils.mkldnn) or plain eager")
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (>= 1)")
    parser.add_argument("--target-ms", type=float, default=1500, help="time one quarks measurement should take")
    parser.add_argument("--min-iters", type=int, default=10)
    parser.add_argument("--max-iters", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before each measurement")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |quarks - peer| / max |peer|")
    parser.add_argument("--json", default=None, help="JSON results file (default: bench/peers/results/DATE.json)")
    args = parser.parse_args()
    if args.rounds < 1:
        fail("--rounds must be >= 1")
    peers = parse_peers(args.peers)
    threads = [int(t) for t in args.threads.split(",")]
    tools = Tools(os.path.abspath(args.build), peers, args.torch_mode)

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
        optimized = os.path.join(work, name, "ort_optimized.onnx") if "ort" in peers else None
        described = tools.quarks_graph(model, inputs, os.path.join(work, name, "graph"))
        graphs[name] = {"quarks": quarks_op_counts(described)}
        for t in threads:
            print(f"{name}, {t} thread(s): agreement ...", end="", flush=True)
            first = t == threads[0]
            agree, peer_versions = check_agreement(tools, peers, model, inputs, t, os.path.join(work, name),
                                                   args.tolerance, optimized if first else None)
            versions.update(peer_versions)
            if first and optimized:
                graphs[name]["onnxruntime"] = op_counts(optimized)
            diffs = ", ".join(f"{SHORT[p]} {a['rel']:.2e}{'' if a['ok'] else ' DISAGREE'}" for p, a in agree.items())
            print(f" rel diff {diffs}; timing", end="", flush=True)

            p50, _, _ = tools.quarks_time(model, inputs, t, 2, 5)
            iters = int(min(args.max_iters, max(args.min_iters, round(args.target_ms / max(p50, 1e-3)))))
            per_round, flops, versions["quarks"] = timed_rounds(tools, peers, model, inputs, t, args.warmup, iters,
                                                                args.rounds)
            row = {"model": name, "description": entry["description"], "threads": t, "iters": iters, "flops": flops}
            row.update(summarise(per_round, peers, agree))
            row["rounds"] = per_round
            rows.append(row)
            times = ", ".join(f"{SHORT[p]} {row['peers'][p]['p50_ms']:.3f} ms (ratio {row['peers'][p]['ratio']:.2f})"
                              for p in peers)
            print(f" quarks {row['quarks_p50_ms']:.3f} ms, {times}", flush=True)

    shutil.rmtree(work, ignore_errors=True)
    load_after = load_average()
    print()
    print(f"quarks {versions.get('quarks', '?')} vs " + ", ".join(f"{PEERS[p]} {versions.get(p, '?')}" for p in peers)
          + f" (CPU); {date}, {cpu_name()}, {os.cpu_count()} cores; {args.rounds} interleaved rounds, medians")
    print(f"1-minute load average before: {load_before}, after: {load_after} (other work on the machine skews all "
          "engines; compare ratios)")
    print_table(rows, peers)
    print("\nGraphs after optimisation (op: count):")
    for name, g in graphs.items():
        for engine in ("quarks", "onnxruntime"):
            if engine in g:
                ops = ", ".join(f"{op} {c}" for op, c in g[engine].items())
                print(f"  {name:<16} {engine:<12} {ops}")

    result = {"date": date, "host": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_before": load_before,
                                     "load_after": load_after}, "versions": versions, "peers": peers,
              "torch_mode": args.torch_mode if "torch" in peers else None, "rounds": args.rounds,
              "tolerance": args.tolerance, "rows": rows, "graphs": graphs}
    path = args.json or os.path.join(HERE, "results", date.replace(":", "") + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"\nJSON: {path}")
    if not all(p["agreement"]["ok"] for r in rows for p in r["peers"].values()):
        fail("quarks and a peer disagree beyond the tolerance (DISAGREE rows above)")


if __name__ == "__main__":
    main()
