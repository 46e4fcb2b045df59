"""Runs the engine and its single-node peers side by side on one file, in two tracks.

    python compare.py --csv FILE --duff BIN [--runs 3] [--peers duckdb,polars,pyspark]
                      [--track exact|idiomatic|both] [--threads 2] [--timeout 900] [--diff]
                      [--no-scaling] [--max-bad-fraction F] [--work DIR] [--results DIR]

Normally started by run.sh, which prepares the venv, the binary and the input. Each round runs
every tool once, in the same order (engine first), each in its own subprocess writing into a
fresh output folder that is deleted afterwards; the input is read once before every run so it is
in the page cache. Reported per tool: the median wall time over the rounds, MB/s (input bytes /
10^6 / median wall), the peak RSS of the whole process tree over all rounds, the ratio of the
median to the engine's, and its results.

Tracks (README.md, "Two tracks"): `exact` peers (peer_*.py) do the engine's job under its exact
contract and must equal it: rows read, rows kept, exact duplicates, rows rejected, the exact sums
of total_price and total_volume over kept rows, kept rows per status, rejected rows per reason,
against the engine and the datagen sidecar (`<csv>.expected.json`, when there is one). `--diff`
also compares the last round's output tables row by row (diff_lake.py). `idiomatic` peers
(idiomatic_*.py) do the job the way each tool's users write it, under the tool's own rules: their
counts are reported beside the engine's, not held against them; their runs must agree with each
other. The engine runs its full job once per round for both tracks: the engine's counts come from
its manifest and a DuckDB query over its `orders/` Parquet, computed after the timing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import PA_DATE, STATUSES, fixed4  # noqa: E402

PEERS = ["duckdb", "polars", "pyspark"]
# Per track, each peer's script; a run of an idiomatic peer is the tool named "<peer> idiomatic".
SCRIPTS = {
    "exact": {"duckdb": "peer_duckdb.py", "polars": "peer_polars.py", "pyspark": "peer_spark.py"},
    "idiomatic": {
        "duckdb": "idiomatic_duckdb.py",
        "polars": "idiomatic_polars.py",
        "pyspark": "idiomatic_spark.py",
    },
}
ENGINES = ("engine", "engine-1core")
FIELDS = [
    "rows_read",
    "kept",
    "exact_duplicates",
    "rejected",
    "sum_total_price",
    "sum_total_volume",
    "by_status",
    "rejected_by_reason",
]
# What an idiomatic peer reports, under its own rules (common.emit_idiomatic).
IDIOMATIC_FIELDS = [
    "rows_read",
    "kept",
    "rejected",
    "duplicates_removed",
    "sum_total_price",
    "sum_total_volume",
    "by_status",
]


# --- Measuring one run -----------------------------------------------------------------------


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every `interval` seconds.

    Only multi-process tools (PySpark's driver and JVM) need it, and only they get it:
    single-process tools get their exact peak from `ru_maxrss`. It competes with the tool for
    the cores (each sample walks /proc), and it would take more from the 2-core engine run than
    from the 1-core one, which leaves it the other core."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop.is_set():
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.stop.wait(self.interval)


def prewarm(path: str) -> None:
    """Reads the file so the timed run finds it in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_tree_gone(pgid: int, limit_s: float = 60.0) -> None:
    """Waits until no live process of group `pgid` is left. A killed JVM with a 12 GiB heap
    takes the kernel a second or more to tear down; without this wait, that happens during the
    next tool's timed run."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        alive = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the command name: state, ppid, pgrp. Zombies hold no memory.
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive = True
                break
        if not alive:
            return
        time.sleep(0.05)


def measure(cmd: list[str], env: dict, timeout: float, log: str, tree: bool) -> dict:
    """Runs `cmd`; returns wall seconds, peak RSS, exit status and stdout. `tree`: the tool
    starts processes of its own (PySpark's JVM), so their RSS is sampled too."""
    # The previous tool's output is written back to disk now, not during this run.
    os.sync()
    with open(log, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
        )
        sampler = TreeSampler(proc.pid)
        if tree:
            sampler.start()
        out_chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))
        reader.start()
        # A blocking wait: polling would take CPU from the tool being timed.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            kill_tree(proc)

        timer = threading.Timer(timeout, expire)
        timer.start()
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        timer.cancel()
        timed_out = expired.is_set()
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        if tree:
            sampler.join()
        # Whatever the tool left running (a JVM after its driver exited) goes too, and is gone
        # before the next timed run starts.
        kill_tree(proc)
        wait_tree_gone(proc.pid)
        reader.join(timeout=10)
    # ru_maxrss (KiB) is exact for a single-process tool; the sampler sees the whole tree.
    peak = max(sampler.peak, rusage.ru_maxrss * 1024 if rusage else 0)
    return {
        "wall_s": wall,
        "peak_rss": peak,
        "exit": proc.returncode,
        "timed_out": timed_out,
        "stdout": b"".join(out_chunks).decode("utf-8", "replace"),
    }


# --- What each tool computed ------------------------------------------------------------------


def engine_manifest(lake: str) -> dict:
    """The run's manifest: the `manifest` column of the lake's `runs` Delta table (a fresh lake
    holds one run), or `_runs/<run_id>.json` for an engine from before that table."""
    import duckdb

    tables = glob.glob(os.path.join(lake, "runs", "*.parquet"))
    if tables:
        con = duckdb.connect()
        texts = [t for (t,) in con.execute(f"SELECT manifest FROM read_parquet({tables!r})").fetchall()]
        con.close()
    else:
        texts = []
        for path in glob.glob(os.path.join(lake, "_runs", "*.json")):
            with open(path) as f:
                texts.append(f.read())
    if len(texts) != 1:
        raise RuntimeError(f"expected one run recorded in {lake}, found {len(texts)}")
    return json.loads(texts[0])


def engine_result(lake: str) -> dict:
    """The engine's result in the peers' format: counts from its manifest, sums and per-status
    counts by DuckDB over its orders/ Parquet (run after the timing)."""
    import duckdb

    m = engine_manifest(lake)
    if m.get("status") != "succeeded":
        raise RuntimeError(f"engine run did not succeed: {m.get('status')} {m.get('error')}")
    c = m["counts"]
    con = duckdb.connect()
    orders = f"read_parquet('{lake}/orders/**/*.parquet', hive_partitioning=false)"
    price, volume = con.execute(
        f"SELECT sum(total_price), sum(total_volume) FROM {orders}"
    ).fetchone()
    by_status = dict(con.execute(f"SELECT status, count(*) FROM {orders} GROUP BY 1").fetchall())
    con.close()
    return {
        "rows_read": c["rows_read"],
        "kept": c["rows_written"],
        "exact_duplicates": c["exact_duplicates"],
        "rejected": c["quarantined"],
        "sum_total_price": fixed4(price),
        "sum_total_volume": fixed4(volume),
        "by_status": {n: by_status.get(n, 0) for _, n in STATUSES},
        "rejected_by_reason": {r: v for r, v in c["quarantined_by_reason"].items() if v},
        "blank_lines": c.get("blank_lines", 0),
        "engine_total_ms": m.get("timings", {}).get("total_ms"),
    }


def sidecar_view(expected: dict) -> dict:
    return {
        "rows_read": expected["rows"],
        "kept": expected["kept"],
        "exact_duplicates": expected["exact_duplicates"],
        "rejected": expected["quarantined"],
        "rejected_by_reason": {
            r: v for r, v in expected.get("quarantined_by_reason", {}).items() if v
        },
    }


def normalise(result: dict, keys: list[str]) -> dict:
    out = {k: result.get(k) for k in keys}
    for k in ("sum_total_price", "sum_total_volume"):
        if out.get(k) is not None:
            out[k] = Decimal(out[k])
    if out.get("rejected_by_reason") is not None:
        out["rejected_by_reason"] = dict(sorted(out["rejected_by_reason"].items()))
    return out


def differences(result: dict, reference: dict, keys: list[str]) -> list[str]:
    a, b = normalise(result, keys), normalise(reference, keys)
    bad = []
    for k in keys:
        if a[k] != b[k]:
            if isinstance(a[k], dict) and isinstance(b[k], dict):
                sub = sorted(
                    f"{s}:{a[k].get(s, 0)}≠{b[k].get(s, 0)}"
                    for s in set(a[k]) | set(b[k])
                    if a[k].get(s, 0) != b[k].get(s, 0)
                )
                bad.append(f"{k}({', '.join(sub)})")
            else:
                bad.append(f"{k}({a[k]}≠{b[k]})")
    return bad


# --- Machine and versions ---------------------------------------------------------------------


def machine(duff: str, peers: list[str]) -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    versions = {
        "duff": subprocess.run([duff, "--version"], capture_output=True, text=True)
        .stdout.strip()
        .removeprefix("duff "),
        "python": platform.python_version(),
    }
    if "duckdb" in peers:
        import duckdb

        versions["duckdb"] = duckdb.__version__
    if "polars" in peers:
        import polars

        versions["polars"] = polars.__version__
    if "pyspark" in peers:
        import pyspark

        versions["pyspark"] = pyspark.__version__
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
        versions["java"] = java.splitlines()[0] if java else "missing"
    import pyarrow

    versions["pyarrow"] = pyarrow.__version__
    versions["psutil"] = psutil.__version__
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "versions": versions,
    }


# --- Running the rounds -------------------------------------------------------------------------


def plan(peers: list[str], tracks: list[str], scaling: bool) -> dict[str, str | None]:
    """Every tool of a round, in running order, with its script (None for the engine)."""
    tools: dict[str, str | None] = {"engine": None}
    if scaling:
        tools["engine-1core"] = None
    for track in tracks:
        for peer in peers:
            name = peer if track == "exact" else f"{peer} idiomatic"
            tools[name] = SCRIPTS[track][peer]
    return tools


def command(tool: str, script: str | None, args, csv: str, out: str) -> tuple[list[str], dict]:
    env = dict(os.environ)
    if script is not None:
        if tool.startswith("polars"):
            env["POLARS_MAX_THREADS"] = str(args.threads)
        return [sys.executable, os.path.join(HERE, script), csv, out, str(args.threads)], env
    threads = args.threads if tool == "engine" else 1
    cmd = [
        args.duff, "run", csv, "--lake", out, "--threads", str(threads),
        "--no-progress", "--force", "--pa-date", PA_DATE,
    ]
    if args.max_bad_fraction is not None:
        cmd += ["--max-bad-fraction", str(args.max_bad_fraction)]
    if tool == "engine-1core":
        # The whole engine process (parse threads and Parquet writer threads) pinned to one CPU,
        # so the speed-up is cores against cores, not a thread-count setting.
        cpu = min(os.sched_getaffinity(0))
        pin = f"import os, sys; os.sched_setaffinity(0, {{{cpu}}}); os.execv(sys.argv[1], sys.argv[1:])"
        cmd = [sys.executable, "-c", pin] + cmd
    return cmd, env


def run_rounds(args, csv: str, tools: dict[str, str | None], work: str):
    """Runs every tool once per round; returns the runs, the results, and the last round's
    output folders kept for `--diff`."""
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    results: dict[str, list[dict]] = {t: [] for t in tools}
    last_out: dict[str, str] = {}
    for r in range(1, args.runs + 1):
        # The engine's two runs swap places every other round, so neither is always the one
        # that follows the previous round's heaviest peer (and the machine's cleanup after it).
        order = list(tools)
        if r % 2 == 0 and "engine-1core" in order:
            order[0], order[1] = order[1], order[0]
        for tool in order:
            out = tempfile.mkdtemp(prefix=f"duff-cmp-{tool.replace(' ', '-')}-", dir=work)
            cmd, env = command(tool, tools[tool], args, csv, out)
            prewarm(csv)
            log = out + ".stderr.log"
            m = measure(cmd, env, args.timeout, log, tree="pyspark" in tool)
            m["round"] = r
            result = None
            if m["timed_out"]:
                m["error"] = "timeout"
            elif m["exit"] != 0:
                with open(log, errors="replace") as f:
                    m["error"] = f"exit {m['exit']}: " + f.read()[-2000:].strip()
            else:
                try:
                    if tool in ENGINES:
                        result = engine_result(out)
                    else:
                        result = json.loads(m["stdout"].strip().splitlines()[-1])
                except Exception as e:  # noqa: BLE001
                    m["error"] = f"no result: {e}"
            m.pop("stdout", None)
            runs[tool].append(m)
            if result is not None:
                results[tool].append(result)
            status = m.get("error", "ok")
            print(
                f"  round {r} {tool:17} {m['wall_s']:8.2f} s  peak RSS "
                f"{m['peak_rss'] / 2**20:8.0f} MiB  {status.splitlines()[0] if status else ''}",
                flush=True,
            )
            if args.diff and r == args.runs and result is not None and not tool.endswith("idiomatic"):
                last_out[tool] = out
            else:
                shutil.rmtree(out, ignore_errors=True)
            if "error" not in m:
                os.remove(log)
    return runs, results, last_out


# --- Checks ---------------------------------------------------------------------------------------


def check(tool: str, runs: list[dict], results: list[dict], engine_ref: dict | None, sidecar: dict | None) -> str:
    """`yes`, or `NO: ` and what is wrong. Every tool's runs must agree with each other; an exact
    peer must also equal the engine and the sidecar, an idiomatic one only itself."""
    if not results:
        return "NO: " + runs[-1].get("error", "no result").splitlines()[0]
    idiomatic = tool.endswith("idiomatic")
    keys = IDIOMATIC_FIELDS if idiomatic else FIELDS
    first = results[0]
    problems = []
    for other in results[1:]:
        d = differences(other, first, keys)
        if d:
            problems.append("runs differ: " + "; ".join(d))
    if not idiomatic:
        d = differences(first, engine_ref, FIELDS) if engine_ref else ["no engine result"]
        if tool != "engine" and d:
            problems.append("vs engine: " + "; ".join(d))
        if sidecar:
            d = differences(first, {**first, **sidecar}, list(sidecar))
            if d:
                problems.append("vs sidecar: " + "; ".join(d))
    return "yes" if not problems else "NO: " + " | ".join(problems)


# --- Report ---------------------------------------------------------------------------------------


def median_wall(runs: list[dict]) -> float | None:
    ok = [m["wall_s"] for m in runs if "error" not in m]
    return statistics.median(ok) if ok else None


def display_name(tool: str) -> str:
    return {"engine": "duff (engine)", "engine-1core": "duff (engine), 1 core"}.get(tool, tool)


def timing_cells(tool: str, runs: dict[str, list[dict]], size: int, eng: float | None) -> list[str]:
    """Median wall, MB/s, peak RSS and ratio to the engine's median."""
    med = median_wall(runs[tool])
    peak = max((m["peak_rss"] for m in runs[tool]), default=0)
    if med is None:
        wall = "timeout" if any(m.get("timed_out") for m in runs[tool]) else "failed"
        return [wall, "–", f"{peak / 2**20:.0f}", "–"]
    rate = size / 1e6 / med
    ratio = "1.00" if tool == "engine" else (f"{med / eng:.2f}" if eng else "–")
    return [f"{med:.2f}", f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}", f"{peak / 2**20:.0f}", ratio]


def track_table(track: str, tools: list[str], runs, results, checks, size: int) -> list[str]:
    eng = median_wall(runs["engine"])
    head = "| tool | wall s (median) | MB/s | peak RSS MiB | ratio vs engine |"
    if track == "exact":
        lines = [head + " matches |", "|---|---:|---:|---:|---:|---|"]
        for tool in tools:
            cells = [display_name(tool)] + timing_cells(tool, runs, size, eng) + [checks[tool]]
            lines.append(f"| {' | '.join(cells)} |")
        return lines
    lines = [
        head + " rows read | kept | rejected | duplicates removed | runs agree |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for tool in tools:
        r = results[tool][0] if results[tool] else {}
        dups = r.get("duplicates_removed", r.get("exact_duplicates", "–"))
        counts = [str(r.get("rows_read", "–")), str(r.get("kept", "–")), str(r.get("rejected", "–")), str(dups)]
        cells = [display_name(tool)] + timing_cells(tool, runs, size, eng) + counts + [checks[tool]]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def per_run_line(tools: list[str], runs: dict[str, list[dict]]) -> str:
    """Every run's wall time and, for peers, its ratio to the engine's run of the same round."""
    engine_by_round = {m["round"]: m["wall_s"] for m in runs["engine"] if "error" not in m}

    def cell(tool: str, m: dict) -> str:
        if "error" in m:
            return m["error"].splitlines()[0][:20]
        text = f"{m['wall_s']:.2f}"
        base = engine_by_round.get(m["round"])
        if tool != "engine" and base:
            text += f" ({m['wall_s'] / base:.2f}×)"
        return text

    return "Per run (wall s; × the engine's run of the same round): " + "; ".join(
        f"{t}: " + ", ".join(cell(t, m) for m in runs[t]) for t in tools
    ) + "."


def phases_line(tools: list[str], results: dict[str, list[dict]]) -> str | None:
    parts = [
        f"{t} " + ", ".join(f"{k} {v:.0f}" for k, v in results[t][-1]["phases_ms"].items())
        for t in tools
        if t not in ENGINES and results[t] and results[t][-1].get("phases_ms")
    ]
    return "Phases of the last round (ms, from the same run): " + "; ".join(parts) + "." if parts else None


# --- Main ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--duff", required=True, help="the duff binary")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument(
        "--track", choices=["exact", "idiomatic", "both"], default="both",
        help="exact: the engine's contract, checked; idiomatic: each tool's own way (default both)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run (default 900)")
    ap.add_argument("--diff", action="store_true", help="row-by-row check of the last round (exact track)")
    ap.add_argument(
        "--no-scaling", action="store_true",
        help="skip the engine run pinned to one core (by default each round also runs the engine "
        "with its whole process confined to one CPU, for the N-cores / 1-core speed-up)",
    )
    ap.add_argument(
        "--max-bad-fraction", type=float, default=None,
        help="passed to the engine, for files dirtier than its default limit (datagen --dirt every-kind)",
    )
    ap.add_argument("--work", default=None, help="where the temporary output folders go")
    ap.add_argument("--results", default=None, help="folder for the JSON and Markdown report")
    args = ap.parse_args()

    csv = os.path.abspath(args.csv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    tracks = ["exact", "idiomatic"] if args.track == "both" else [args.track]
    size = os.path.getsize(csv)
    # A hand-written file (edge_cases.csv) has no datagen sidecar: the engine is the reference.
    sidecar_path = csv + ".expected.json"
    expected = None
    if os.path.exists(sidecar_path):
        with open(sidecar_path) as f:
            expected = json.load(f)
    work = args.work or tempfile.gettempdir()
    os.makedirs(work, exist_ok=True)
    info = machine(args.duff, peers)
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), {info['mem_gib']} GiB; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        flush=True,
    )
    rows = f"{expected['rows']} rows" if expected else "no sidecar"
    print(
        f"input: {csv} ({size / 1e6:.1f} MB, {rows}); {args.runs} rounds, tracks {', '.join(tracks)}, "
        f"--threads {args.threads}, timeout {args.timeout:.0f} s",
        flush=True,
    )

    tools = plan(peers, tracks, not args.no_scaling)
    t_all = time.perf_counter()
    load_start = os.getloadavg()
    runs, results, last_out = run_rounds(args, csv, tools, work)
    elapsed = time.perf_counter() - t_all
    load_end = os.getloadavg()

    engine_ref = results["engine"][0] if results["engine"] else None
    sidecar = sidecar_view(expected) if expected else None
    checks = {t: check(t, runs[t], results[t], engine_ref, sidecar) for t in tools}

    diffs: dict[str, str] = {}
    if args.diff and "engine" in last_out:
        from diff_lake import diff

        for tool in last_out:
            if tool not in ENGINES:
                print(f"row-by-row, {tool} vs engine:", flush=True)
                diffs[tool] = "same" if diff(last_out["engine"], last_out[tool]) else "DIFFERENT"
                if diffs[tool] != "same":
                    checks[tool] = (checks[tool] if checks[tool] != "yes" else "NO:") + " rows differ"
    for out in last_out.values():
        shutil.rmtree(out, ignore_errors=True)

    engines = [t for t in tools if t in ENGINES]
    v = info["versions"]
    lines = [
        f"Input: `{os.path.basename(csv)}`, {size / 1e6:.1f} MB"
        + (f", {expected['rows']:,} rows (datagen seed {expected.get('seed')})" if expected else "")
        + f"; {args.runs} alternating round{'s' if args.runs != 1 else ''}; "
        f"`--threads {args.threads}` for every tool; file in page cache.",
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['mem_gib']} GiB RAM, "
        f"Linux {info['kernel']}. Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
    ]
    for track in tracks:
        members = engines + [t for t in tools if t not in ENGINES and t.endswith("idiomatic") == (track == "idiomatic")]
        title = {
            "exact": "Exact track (the engine's contract; every count, sum and reason must match)",
            "idiomatic": "Idiomatic track (each tool's own reader and rules; counts reported, not matched)",
        }[track]
        lines += ["", f"**{title}**", ""] + track_table(track, members, runs, results, checks, size)
    lines += [
        "",
        per_run_line(list(tools), runs)
        + f" Total time of the comparison: {elapsed:.0f} s. Load average (1/5/15 min) at start "
        + "/".join(f"{x:.2f}" for x in load_start)
        + ", at end "
        + "/".join(f"{x:.2f}" for x in load_end)
        + " (anything else running on the machine skews the numbers).",
    ]
    eng, one_core = median_wall(runs["engine"]), median_wall(runs.get("engine-1core", []))
    if eng and one_core:
        lines.append(
            f"Scaling: the engine on {args.threads} cores is {one_core / eng:.2f}× as fast as on 1 core "
            f"({one_core:.2f} s / {eng:.2f} s; the 1-core run is the whole process pinned to one CPU "
            "with `--threads 1`)."
        )
    if engine_ref:
        lines.append(
            "Engine result: "
            + ", ".join(f"{k} {engine_ref[k]}" for k in ("rows_read", "kept", "exact_duplicates", "rejected"))
            + f", sum_total_price {engine_ref['sum_total_price']}, "
            f"sum_total_volume {engine_ref['sum_total_volume']}, by_status {engine_ref['by_status']}."
        )
    phases = phases_line(list(tools), results)
    if phases:
        lines.append(phases)
    if diffs:
        lines.append("Row-by-row (last round): " + ", ".join(f"{t} {d}" for t, d in diffs.items()) + ".")
    report = "\n".join(lines)
    print()
    print(report)

    if args.results:
        os.makedirs(args.results, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        base = os.path.join(args.results, f"compare-{stamp}")
        with open(base + ".md", "w") as f:
            f.write(report + "\n")
        with open(base + ".json", "w") as f:
            json.dump(
                {
                    "input": csv, "bytes": size, "expected": expected, "machine": info,
                    "tracks": tracks, "runs": runs, "results": results, "checks": checks,
                    "diffs": diffs, "elapsed_s": elapsed, "loadavg": [load_start, load_end],
                },
                f, indent=2, default=str,
            )
        print(f"\nreport: {base}.md, {base}.json")
    return 0 if all(c == "yes" for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
