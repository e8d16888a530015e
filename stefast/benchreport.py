"""``stefast bench``: run the benchmark suite (bench/ in the source tree,
installed with the package as stefast/_bench) with pytest-benchmark, or read
a saved pytest-benchmark JSON, and write a report.

Outputs in DIR: ``bench.md`` (machine block; per group a table of median
rate with IQR, speed-up over the NumPy reference and over each peer, and
the fraction of the bound measured in the same run; interleaved groups),
``bench.json`` (the pytest-benchmark JSON), ``throughput_vs_mn.png`` and
``threads.png``.

pytest-benchmark runs all rounds of one implementation before the next;
the groups marked "interleaved" were timed round by round in turn, which is
robust to slow drift of the machine. Medians and quartiles are shown.
"""

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from stefast import _validation as val

REFERENCE = "reference"
FAST = "stefast"


# ---- locating and running the suite ----

def find_bench_dir():
    """The benchmark suite's directory: $STEFAST_BENCH_DIR if set, else the
    copy installed with the package (stefast/_bench), else bench/ beside the
    package or in the working directory (a source tree); None if none has
    the suite."""
    candidates = []
    if os.environ.get("STEFAST_BENCH_DIR"):
        candidates.append(Path(os.environ["STEFAST_BENCH_DIR"]))
    spec = importlib.util.find_spec("stefast._bench")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    candidates += [Path(__file__).resolve().parents[1] / "bench", Path.cwd() / "bench"]
    for c in candidates:
        if (c / "conftest.py").is_file():
            return c.resolve()
    return None


#: what `stefast bench` imports beyond stefast's own dependencies: module -> pip name
BENCH_NEEDS = {"pytest": "pytest", "pytest_benchmark": "pytest-benchmark",
               "matplotlib": "matplotlib"}


def missing_requirements(run=True):
    """pip names of the modules `stefast bench` needs that are not installed
    (pytest and pytest-benchmark only to run the suite, not to report a JSON)."""
    needed = BENCH_NEEDS if run else {"matplotlib": "matplotlib"}
    return [pip for mod, pip in needed.items() if importlib.util.find_spec(mod) is None]


def run_pytest(bench_dir, json_path, quick=False):
    """pytest-benchmark in a subprocess (fresh interpreter: the suite sets
    thread env vars and compiles peers); returns pytest's exit code."""
    cmd = [sys.executable, "-m", "pytest", str(bench_dir), "-q", "-p", "no:cacheprovider",
           f"--benchmark-json={json_path}", "--benchmark-sort=fullname",
           "--benchmark-columns=median,iqr,rounds", "-W", "ignore::DeprecationWarning"]
    env = dict(os.environ)
    if quick:
        cmd += ["-m", "quick", "--benchmark-max-time=0.2", "--benchmark-min-rounds=3"]
        env["STEFAST_BENCH_QUICK"] = "1"
    print("running:", " ".join(cmd), file=sys.stderr)
    # run from inside bench/: `python -m pytest` puts the working directory on
    # sys.path, and from the checkout's root that would shadow the installed
    # (compiled) package with the source tree
    return subprocess.run(cmd, cwd=str(bench_dir), env=env).returncode


# ---- machine block ----

def machine_info():
    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "cores (os.cpu_count)": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name") and "cpu" not in info:
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and "flags" not in info:
                flags = set(line.split(":", 1)[1].split())
                keep = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                        "avx512vl", "avx512_vnni", "amx_tile"]
                info["flags (SIMD)"] = " ".join(f for f in keep if f in flags)
    except OSError:
        info["cpu"] = platform.processor() or "unknown"
    if hasattr(os, "sched_getaffinity"):
        info["cores (affinity)"] = len(os.sched_getaffinity(0))
    info["compiler (sysconfig CC)"] = sysconfig.get_config_var("CC")
    cc = shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) or shutil.which("cc")
    if cc:
        try:
            out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=10)
            info["compiler version"] = out.stdout.splitlines()[0] if out.stdout else ""
        except (OSError, subprocess.SubprocessError):
            pass
    versions = {}
    for mod in ("stefast", "numpy", "scipy", "torch", "numba", "pytest_benchmark", "Cython"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = "not installed"
    info["versions"] = versions
    info["thread env"] = {k: os.environ.get(k, "unset") for k in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    info["blas"] = _blas_info()
    return info


def _blas_info():
    try:
        import threadpoolctl
        return [{k: d.get(k) for k in ("internal_api", "version", "num_threads",
                                         "threading_layer", "architecture")}
                for d in threadpoolctl.threadpool_info()]
    except Exception:
        pass
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")
        return cfg.get("Build Dependencies", {}).get("blas", {})
    except Exception as exc:
        return f"unavailable ({exc})"


# ---- reading the JSON ----

def _rows(data):
    """[{group, impl, median, q1, q3, work, unit, bound, bound_units, extra}]"""
    rows = []
    for b in data.get("benchmarks", []):
        extra = b.get("extra_info", {})
        st = b.get("stats") or {}
        if "impl" not in extra or not st.get("median"):
            continue
        rows.append(dict(group=b.get("group") or b["name"], impl=extra["impl"],
                         median=st["median"], q1=st.get("q1", st["median"]),
                         q3=st.get("q3", st["median"]), rounds=st.get("rounds"),
                         work=extra.get("work", 1), unit=extra.get("unit", "samples"),
                         bound=extra.get("bound"), bound_units=extra.get("bound_units"),
                         extra=extra))
    return rows


TTA_KEY = "seconds_to_se_1e-3"  # extra_info of the time-to-accuracy benchmarks


def _fmt_rate(x):
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{suf}"
    return f"{x:.3g}"


def _peer_cell(ratios):
    return ", ".join(f"{k} {v:.2f}x" for k, v in ratios) or "-"


def render_markdown(data, machine=None):
    """The report as markdown. machine: the machine block; by default the one
    saved in the JSON by ``stefast bench`` (``data["stefast"]["machine"]``)."""
    rows = _rows(data)
    bounds = data.get("stefast", {}).get("bounds", {})
    if machine is None:
        machine = data.get("stefast", {}).get("machine") or {
            "note": "no machine block saved with this JSON"}
    out = ["# stefast benchmark report", ""]
    out += ["Medians of pytest-benchmark rounds; IQR is the 25-75% range of the rate. "
            "Speed-ups are rate(this)/rate(other) in the same run: > 1 means this row "
            "is faster. pytest-benchmark runs all rounds of one row before the next; "
            "the *interleaved* tables were timed round by round in turn. "
            "'of bound' is the fraction of this machine's limit measured in the same run "
            "(one-pass read bandwidth, or the Gaussian generator's raw rate). "
            "Timing is noisy on shared machines; nothing here is asserted.", ""]
    out += ["## Machine", "", "```"]
    if data.get("datetime"):
        out.append(f"run: {data['datetime']}")
    for k, v in machine.items():
        out.append(f"{k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    mi = data.get("machine_info", {})
    if mi.get("cpu", {}).get("brand_raw"):
        out.append(f"cpu (pytest-benchmark): {mi['cpu']['brand_raw']}")
    ci = data.get("commit_info", {})
    if ci.get("id"):
        out.append(f"commit: {ci.get('id')} dirty={ci.get('dirty')}")
    out += ["```", ""]
    if bounds:
        out += ["## Bounds measured in this run", "", "| bound | ns per value |", "|---|---:|"]
        out += [f"| {k} | {v * 1e9:.3f} |" for k, v in sorted(bounds.items())]
        out.append("")

    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    out += ["## Results", ""]
    for group in sorted(groups):
        for r in groups[group]:
            r["rate"] = r["work"] / r["median"]  # work per call may differ between rows
        rs = sorted(groups[group], key=lambda r: -r["rate"])
        unit = rs[0]["unit"]
        ref = next((r for r in rs if r["impl"] == REFERENCE), None)
        out += [f"### {group}", "",
                f"| implementation | {unit}/s (median) | IQR | speed-up vs reference | "
                "speed-up vs peers | of bound |", "|---|---:|---:|---:|---|---:|"]
        for r in rs:
            iqr = f"{_fmt_rate(r['work'] / r['q3'])}-{_fmt_rate(r['work'] / r['q1'])}"
            vs_ref = f"{r['rate'] / ref['rate']:.2f}x" if ref and r is not ref else "-"
            peers = [(p["impl"], r["rate"] / p["rate"]) for p in rs
                     if p is not ref and not p["impl"].startswith(FAST)] \
                if r["impl"].startswith(FAST) else []
            frac = "-"
            if r["bound"] in bounds and r["bound_units"]:
                frac = f"{bounds[r['bound']] * r['bound_units'] / r['median']:.0%}"
            out.append(f"| {r['impl']} | {_fmt_rate(r['rate'])} | {iqr} | {vs_ref} | "
                       f"{_peer_cell(peers)} | {frac} |")
        out.append("")
        # time-to-accuracy groups: the estimated seconds matter more than the rate
        tta = [(r["impl"], r["extra"][TTA_KEY]) for r in rs if TTA_KEY in r["extra"]]
        if tta:
            base = dict(tta).get(REFERENCE)
            out += ["| implementation | estimated seconds to the target standard error | "
                    "speed-up vs reference |", "|---|---:|---:|"]
            for impl, sec in sorted(tta, key=lambda kv: kv[1]):
                gain = f"{base / sec:.0f}x" if base and impl != REFERENCE else "-"
                out.append(f"| {impl} | {sec:.4g} | {gain} |")
            out.append("")

    inter = [(b.get("group") or b["name"], b["extra_info"]) for b in data.get("benchmarks", [])
             if "interleaved" in b.get("extra_info", {})]
    if inter:
        out += ["## Interleaved groups (round by round)", ""]
        for group, extra in inter:
            unit = extra.get("unit", "samples")
            summary = extra["interleaved"]
            fast = next((v for k, v in summary.items() if k.startswith(FAST)), None)
            out += [f"### {group}", "", f"| implementation | {unit}/s (median) | IQR | "
                    "time / stefast | rounds |", "|---|---:|---:|---:|---:|"]
            for name, s in sorted(summary.items(), key=lambda kv: kv[1]["median"]):
                w = extra.get("work", 1)
                ratio = f"{s['median'] / fast['median']:.2f}x" if fast else "-"
                out.append(f"| {name} | {_fmt_rate(w / s['median'])} | "
                           f"{_fmt_rate(w / s['q3'])}-{_fmt_rate(w / s['q1'])} | {ratio} | "
                           f"{s['rounds']} |")
            out.append("")
            frac = extra.get("fraction_of_read")
            if frac:
                out += [f"stefast at {frac['median']:.0%} of the read ({frac['read']}), median "
                        f"over {len(frac['per_copy'])} copies of the input "
                        f"({min(frac['per_copy']):.0%}-{max(frac['per_copy']):.0%}).", ""]
    if not rows:
        out += ["No timed results in this JSON (was it written with --benchmark-disable?)", ""]
    return "\n".join(out)


def render_saved(json_path):
    """The markdown report of a saved ``bench.json``, with the machine block
    saved in it (used by the documentation's performance page)."""
    return render_markdown(json.loads(Path(json_path).read_text()))


# ---- plots ----

def write_plots(data, out_dir):
    """throughput_vs_mn.png and threads.png; returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(data)
    written = []

    def save(fig, ax, legend, name):
        if legend:
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = Path(out_dir) / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    series = {}
    for r in rows:
        e = r["extra"]
        if "m" in e and "n" in e and e.get("unit", "samples") == "samples" \
                and e.get("study") not in ("B", "threads", "mc_n") and e.get("threads", 1) == 1:
            key = (r["impl"], e.get("dtype", "float64"))
            series.setdefault(key, {})[e["m"] * e["n"]] = r["work"] / r["median"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (impl, dt), pts in sorted(series.items()):
        xs = sorted(pts)
        ax.plot(xs, [pts[x] for x in xs], "o-", label=f"{impl} ({dt})")
    ax.set(xscale="log", yscale="log", xlabel="m * n", ylabel="samples / s",
           title="loss_and_grads throughput vs m*n (1 thread)")
    save(fig, ax, series, "throughput_vs_mn.png")

    threads = {}
    for r in rows:
        e = r["extra"]
        if e.get("study") == "threads" or ("threads" in e and r["impl"].startswith(FAST)):
            kernel = e.get("kernel", r["group"])
            threads.setdefault(kernel, {})[e["threads"]] = r["work"] / r["median"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kernel, pts in sorted(threads.items()):
        xs = sorted(pts)
        ax.plot(xs, [pts[x] / pts[xs[0]] for x in xs], "o-", label=kernel[:50])
    ax.set(xlabel="threads", ylabel="speed-up over the fewest threads",
           title="stefast scaling with threads")
    save(fig, ax, threads, "threads.png")
    return written


# ---- entry points ----

def run_bench(out_dir, quick=False, from_json=None):
    """Run (or read) the benchmarks and write the report into out_dir; 0 on success."""
    missing = missing_requirements(run=from_json is None)
    if missing:
        print(f"stefast bench: needs {', '.join(missing)}, not installed; "
              'install the extra: python -m pip install "stefast[bench]"', file=sys.stderr)
        return 2
    # absolute: the suite runs with its own directory as the working directory
    out_dir = val.check_output_dir(out_dir).resolve()
    json_path = out_dir / "bench.json"
    if from_json is not None:
        src = Path(from_json)
        if not src.is_file():
            print(f"stefast bench: --from-json {src} does not exist", file=sys.stderr)
            return 2
        try:
            data = json.loads(src.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"--from-json {src} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            raise ValueError(f"--from-json {src} is not a pytest-benchmark JSON (an object "
                             f"with a 'benchmarks' list); got {type(data).__name__}")
        if src.resolve() != json_path.resolve():
            json_path.write_text(json.dumps(data, indent=1))
    else:
        bench_dir = find_bench_dir()
        if bench_dir is None:
            print("stefast bench: the benchmark suite is missing from this installation "
                  "(stefast/_bench); reinstall stefast, set STEFAST_BENCH_DIR=/path/to/bench, "
                  "or use --from-json FILE with a saved pytest-benchmark JSON.",
                  file=sys.stderr)
            return 2
        code = run_pytest(bench_dir, json_path, quick=quick)
        if not json_path.is_file():
            print(f"stefast bench: pytest exited with {code} and wrote no JSON", file=sys.stderr)
            return code or 1
        data = json.loads(json_path.read_text())
        # the machine the suite ran on travels with its numbers
        data.setdefault("stefast", {})["machine"] = machine_info()
        json_path.write_text(json.dumps(data, indent=1))
        if code not in (0,):
            print(f"stefast bench: pytest exited with {code}; reporting what ran",
                  file=sys.stderr)
    md = render_markdown(data)
    (out_dir / "bench.md").write_text(md)
    plots = write_plots(data, out_dir)
    print(f"wrote {out_dir / 'bench.md'}, {json_path}, " + ", ".join(str(p) for p in plots))
    return 0 if from_json is not None or code == 0 else int(code)


def add_bench_parser(subparsers):
    """Register ``stefast bench`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "bench", help="run the benchmark suite and write a report (bench.md, JSON, plots)",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-report", help="output directory (default: bench-report)")
    p.add_argument("--quick", action="store_true",
                   help="a representative subset with fewer rounds (about a minute)")
    p.add_argument("--from-json", metavar="FILE", default=None,
                   help="report from a saved pytest-benchmark JSON instead of running")
    p.set_defaults(handler=_handle, func=_handle)
    return p


def _handle(args):
    return run_bench(args.out, quick=args.quick, from_json=args.from_json)


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="stefast")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
