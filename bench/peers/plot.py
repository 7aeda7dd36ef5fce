#!/usr/bin/python3
"""Charts from quarks-bench JSON and compare.py JSON: latency against threads, and per-op time.

  plot.py RESULT.json [RESULT.json ...] -o latency.svg [--log] [--ops-out ops.svg] [--top 25]
          [--peak-gflops G --peak-gbps B]

Inputs, told apart by their content:
  - compare.py --json: {"rows": [{"model", "threads", "quarks_p50_ms", "peers": {peer: {"p50_ms"}},
    "rounds": [...]}]}; older files with "ort_p50_ms" in each row are read as the peer "ort";
  - quarks-bench --format json: {"model" or "block", "runs": [{"threads", "precision", "p50_ms", ...}]},
    and with --profile an "ops" list: [{"op", "name", "ms" (or "p50_ms", "mean_ms", "us", "seconds"),
    "flops", "bytes"}], at the top level or inside each run.

Latency chart (-o): one panel per model, p50 milliseconds against threads, one line per engine (quarks
and each peer). For compare.py results the point is the median over the interleaved rounds and the bar
spans the fastest to the slowest round.

Per-op chart (--ops-out, default: the -o name with "-ops" before the extension), for every input that
has an "ops" list: the --top ops by time as bars and, when the ops carry flops and bytes, a roofline
panel (GFLOP/s against flops per byte, log-log; roofs drawn when --peak-gflops / --peak-gbps are given;
ops without flops, such as norms, appear in the bars only).
Inputs without "ops" get no per-op chart (a note says so).

The format follows each output file's extension: .png, .svg or .pdf. Needs matplotlib (Debian:
python3-matplotlib).
"""

import argparse
import collections
import json
import math
import os
import sys

FORMATS = (".png", ".svg", ".pdf")
TIME_FIELDS = (("ms", 1.0), ("p50_ms", 1.0), ("mean_ms", 1.0), ("time_ms", 1.0), ("total_ms", 1.0), ("us", 1e-3),
               ("seconds", 1e3), ("s", 1e3))
ENGINE_NAMES = {"quarks": "quarks", "ort": "ONNX Runtime", "torch": "PyTorch"}


def fail(message):
    sys.exit(f"plot.py: error: {message}")


# --- reading -------------------------------------------------------------------------------------------------


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def model_label(bench):
    """A quarks-bench result's model name: the ONNX file's stem or the block name."""
    if "model" in bench:
        return os.path.splitext(os.path.basename(str(bench["model"])))[0]
    return str(bench.get("block", "?"))


# A series: (model, engine) -> {threads: (p50, low, high)}.
def compare_series(result):
    """Series of a compare.py result; the spread is the fastest and slowest round."""
    series = collections.defaultdict(dict)
    for row in result["rows"]:
        peers = row.get("peers")
        if peers is None and "ort_p50_ms" in row:  # files written before --peers
            peers = {"ort": {"p50_ms": row["ort_p50_ms"]}}
        rounds = row.get("rounds", [])
        for engine, p50 in [("quarks", row["quarks_p50_ms"])] + [(p, v["p50_ms"]) for p, v in (peers or {}).items()]:
            times = [r[f"{engine}_p50_ms"] for r in rounds if f"{engine}_p50_ms" in r] or [p50]
            series[(row["model"], engine)][row["threads"]] = (p50, min(times), max(times))
    return series


def bench_series(bench):
    """Series of a quarks-bench result: one per precision (named "quarks" when there is only f32)."""
    series = collections.defaultdict(dict)
    precisions = {run.get("precision", "f32") for run in bench["runs"]}
    for run in bench["runs"]:
        precision = run.get("precision", "f32")
        engine = "quarks" if precisions <= {"f32"} else f"quarks {precision}"
        p50 = run["p50_ms"]
        series[(model_label(bench), engine)][run["threads"]] = (p50, run.get("min_ms", p50), run.get("max_ms", p50))
    return series


def gather_series(inputs):
    """All series of all inputs; a (model, engine) pair seen in two files is told apart by file name."""
    per_file = []
    for path, data in inputs:
        if "rows" in data:
            per_file.append((path, compare_series(data)))
        elif "runs" in data:
            per_file.append((path, bench_series(data)))
        else:
            fail(f"{path}: neither compare.py JSON (\"rows\") nor quarks-bench JSON (\"runs\")")
    seen = collections.Counter(key for _, series in per_file for key in series)
    merged = {}
    for path, series in per_file:
        stem = os.path.splitext(os.path.basename(path))[0]
        for (model, engine), points in series.items():
            label = engine if seen[(model, engine)] == 1 else f"{engine} [{stem}]"
            merged[(model, label)] = points
    return merged


def op_time_ms(op):
    for field, scale in TIME_FIELDS:
        if isinstance(op.get(field), (int, float)):
            return op[field] * scale
    return None


def op_label(op):
    kind = op.get("op") or "+".join(n.get("op", "?") for n in op.get("nodes", [])) or "?"
    name = op.get("name") or ", ".join(n.get("name", "") for n in op.get("nodes", []) if n.get("name"))
    return f"{kind} {name}".strip() if name and name != kind else kind


def op_lists(bench):
    """(title suffix, ops) for every "ops" list of a quarks-bench result: top level and per run."""
    found = []
    if isinstance(bench.get("ops"), list) and bench["ops"]:
        found.append(("", bench["ops"]))
    for run in bench.get("runs", []):
        if isinstance(run.get("ops"), list) and run["ops"]:
            found.append((f", {run.get('threads', '?')} thread(s) {run.get('precision', '')}".rstrip(), run["ops"]))
    return found


# --- drawing -------------------------------------------------------------------------------------------------


def pyplot():
    try:
        import matplotlib
    except ImportError:
        fail("matplotlib is missing: apt-get install python3-matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_format(path):
    if os.path.splitext(path)[1].lower() not in FORMATS:
        fail(f"{path}: give an output file ending in {', '.join(FORMATS)}")


def line_styles(series):
    """Matplotlib style per series: the colour follows the engine, the line style the input file."""
    engines, files = [], []
    for _, label in series:
        base, _, rest = label.partition(" [")
        engines += [base] if base not in engines else []
        files += [rest] if rest not in files else []
    dashes = ["-", "--", ":", "-."]
    styles = {}
    for key in series:
        base, _, rest = key[1].partition(" [")
        styles[key] = {"color": f"C{engines.index(base) % 10}", "linestyle": dashes[files.index(rest) % len(dashes)]}
    return styles


def plot_latency(series, out, title, log):
    plt = pyplot()
    models = sorted({model for model, _ in series})
    cols = min(3, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.8 * rows), squeeze=False)
    styles = line_styles(series)
    for ax, model in zip(axes.flat, models):
        for (m, engine), points in sorted(series.items()):
            if m != model:
                continue
            threads = sorted(points)
            p50 = [points[t][0] for t in threads]
            low = [points[t][0] - points[t][1] for t in threads]
            high = [points[t][2] - points[t][0] for t in threads]
            base, _, rest = engine.partition(" ")
            name = f"{ENGINE_NAMES.get(base, base)} {rest}".strip()
            ax.errorbar(threads, p50, yerr=[low, high], marker="o", capsize=3, label=name, **styles[(m, engine)])
        ax.set_title(model)
        ax.set_xlabel("threads")
        ax.set_ylabel("p50 latency (ms)")
        ax.set_xticks(sorted({t for (m, _), pts in series.items() if m == model for t in pts}))
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_ops(ops, out, title, top, peak_gflops, peak_gbps):
    """Bars of the top ops by time and, when they carry flops and bytes, a roofline panel."""
    plt = pyplot()
    timed = [(op_time_ms(op), op) for op in ops]
    timed = [(ms, op) for ms, op in timed if ms is not None]
    if not timed:
        fail(f"{title}: no op has a time field ({', '.join(f for f, _ in TIME_FIELDS)})")
    timed.sort(key=lambda t: t[0], reverse=True)
    total = sum(ms for ms, _ in timed)
    shown = timed[:top]
    roof = [(op.get("flops", 0) / op["bytes"], op.get("flops", 0) / ms / 1e6, op)
            for ms, op in timed if op.get("flops", 0) > 0 and op.get("bytes", 0) > 0 and ms > 0]
    panels = 2 if roof else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, max(3.5, 0.32 * len(shown) + 1.5)), squeeze=False)

    bars = axes[0][0]
    labels = [op_label(op) for _, op in shown]
    values = [ms for ms, _ in shown]
    bars.barh(range(len(shown)), values)
    bars.set_yticks(range(len(shown)))
    bars.set_yticklabels(labels, fontsize="small")
    bars.invert_yaxis()
    for i, ms in enumerate(values):
        bars.text(ms, i, f" {100 * ms / total:.1f}%", va="center", fontsize="x-small")
    bars.set_xlabel("time (ms)")
    bars.set_title(f"top {len(shown)} of {len(timed)} ops, {total:.3f} ms in all")
    bars.grid(True, axis="x", alpha=0.3)

    if roof:
        ax = axes[0][1]
        kinds = sorted({op.get("op", "?") for _, _, op in roof})
        for kind in kinds:
            pts = [(x, y) for x, y, op in roof if op.get("op", "?") == kind]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=kind, s=20)
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = min(x for x, _, _ in roof) / 2, max(x for x, _, _ in roof) * 2
        ridge = peak_gflops / peak_gbps if peak_gflops and peak_gbps else None  # where the two roofs meet
        if ridge:
            lo, hi = min(lo, ridge / 2), max(hi, ridge * 2)
        if peak_gbps:
            end = ridge or hi
            ax.plot([lo, end], [peak_gbps * lo, peak_gbps * end], "k--", linewidth=1, label=f"{peak_gbps:g} GB/s")
        if peak_gflops:
            ax.plot([ridge or lo, hi], [peak_gflops, peak_gflops], "k:", linewidth=1, label=f"{peak_gflops:g} GFLOP/s")
        ax.set_xlabel("arithmetic intensity (flop / byte)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title("roofline")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def default_ops_out(out):
    stem, ext = os.path.splitext(out)
    return f"{stem}-ops{ext}"


def numbered(path, index, count):
    """path itself for a single chart, else path with -1, -2, ... before the extension."""
    if count == 1:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}-{index + 1}{ext}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="quarks-bench --format json or compare.py --json files")
    parser.add_argument("-o", "--out", required=True, help="latency chart (.png, .svg or .pdf)")
    parser.add_argument("--ops-out", default=None, help="per-op chart (default: OUT with -ops before the extension)")
    parser.add_argument("--top", type=int, default=25, help="ops shown in the bar chart")
    parser.add_argument("--peak-gflops", type=float, default=None, help="compute roof of the roofline (GFLOP/s)")
    parser.add_argument("--peak-gbps", type=float, default=None, help="memory roof of the roofline (GB/s)")
    parser.add_argument("--title", default="p50 latency against threads")
    parser.add_argument("--log", action="store_true", help="logarithmic latency axis")
    args = parser.parse_args()
    if args.top < 1:
        parser.error("--top must be >= 1")
    ops_out = args.ops_out or default_ops_out(args.out)
    check_format(args.out)
    check_format(ops_out)

    inputs = [(path, load(path)) for path in args.inputs]
    plot_latency(gather_series(inputs), args.out, args.title, args.log)
    print(f"latency: {args.out}")

    charts = []
    for path, data in inputs:
        if "runs" not in data:
            continue  # compare.py results carry no per-op times
        lists = op_lists(data)
        if not lists:
            print(f"{path}: no \"ops\" list (quarks-bench --profile writes one); no per-op chart")
        for suffix, ops in lists:
            charts.append((f"{model_label(data)}{suffix}", ops))
    for i, (title, ops) in enumerate(charts):
        out = numbered(ops_out, i, len(charts))
        plot_ops(ops, out, title, args.top, args.peak_gflops, args.peak_gbps)
        print(f"ops: {out}")


if __name__ == "__main__":
    main()
