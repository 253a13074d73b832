"""Whole-pipeline benchmark: `aperture run` (its own process, as a user runs it) against the synthetic library on
the sample server (own process, 20 ms latency), with fake-OpenAI embeddings (default) or the local model
(--local). For a first run and a no-change second run it prints, per stage: time, media-server requests, rows
written, Dagster events (and "Dagster tail": seconds from the step's output to its end, writing those events),
and the peak memory of aperture's process tree (aperture and its children, sampled every 0.1 s; the sample
server and the embedded PostgreSQL, a daemon, are not in it: PostgreSQL is printed on its own). With --scale N
(N > 1) it runs the 1x library first and prints each figure's ratio to it. After each scale's two runs it
prints the database's table and index sizes (bench_db_size.py).

Scale 1 = 2,000 series / 100,000 episodes / 50 users; scale 10 = 20,000 / 1,000,000 / 500.
Targets: 1x first run < 30 s, no-change < 10 s, < 600 MB; 10x first < 5 min, no-change < 60 s, < 2 GB.

Run: .venv/bin/python bench/bench_run.py [--scale 10] [--local] [--latency-ms 20]
"""

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from aperture_dev.fake_ai_server import FakeAIServer
from bench_db_size import print_sizes
from common import API_KEY, ServerProcess
from dagster import DagsterEventType, instance_for_test

from aperture_resources import database as db

STAGES = ("series_catalog", "series_embeddings", "series_watch_history", "series_recommendations", "series_library")
# The metadata figure that counts each stage's writes (run totals where the stage is per user).
ROWS = {"series_catalog": "rows_changed", "series_embeddings": "embedded", "series_watch_history": "run_rows_changed",
        "series_recommendations": "run_picks", "series_library": "run_files_written"}
TARGETS = {1: (30, 10, 600), 10: (300, 60, 2048)}
STEP_EVENTS = {DagsterEventType.STEP_START.value, DagsterEventType.STEP_SUCCESS.value,
               DagsterEventType.STEP_FAILURE.value}


class TreeMemory:
    """RSS of a process and all its descendants, sampled every 0.1 s: [(time, bytes)]."""

    def __init__(self, pid: int) -> None:
        self.samples: list[tuple[float, int]] = []
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [self._root, *self._root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a child that just exited
                        total += proc.memory_info().rss
            except psutil.Error:
                return
            self.samples.append((time.time(), total))
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0, end: float = float("inf")) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def postgres_rss(data_dir: Path) -> int:
    """RSS of the embedded PostgreSQL (postmaster and backends; shared buffers count once per process)."""
    pid_file = db.embedded_pgdata(data_dir) / "postmaster.pid"
    try:
        root = psutil.Process(int(pid_file.read_text().split()[0]))
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except (OSError, ValueError, psutil.Error):
        return 0


def run(env: dict, cwd: Path, data_dir: Path) -> tuple[float, str, TreeMemory, int]:
    """One `aperture run`: (seconds, stdout, its memory samples, peak PostgreSQL RSS)."""
    started = time.perf_counter()
    process = subprocess.Popen([str(Path(sys.executable).with_name("aperture")), "run"], env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    pg_peak = 0
    output: dict[str, str] = {}
    readers = [threading.Thread(target=lambda n, f: output.__setitem__(n, f.read()), args=(n, f), daemon=True)
               for n, f in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    while process.poll() is None:
        pg_peak = max(pg_peak, postgres_rss(data_dir))
        time.sleep(0.5)
    for reader in readers:
        reader.join()
    memory.stop()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"aperture run failed:\n{output['out'][-3000:]}\n{output['err'][-3000:]}")
    return seconds, output["out"], memory, pg_peak


def stage_figures(data_dir: Path, request_times: list[float], memory: TreeMemory) -> dict[str, dict]:
    """Per stage of the newest run: seconds, requests, rows, Dagster events and peak tree memory."""
    url = db.start_embedded(data_dir)
    storage = {"postgres": {"postgres_url": db.sqlalchemy_url(db.with_database(url, db.DAGSTER_DATABASE),
                                                                "psycopg2")}}
    figures: dict[str, dict] = {}
    with instance_for_test(overrides={"storage": storage}) as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
        logs = instance.all_logs(run_id)
    for stage in STAGES:
        events = [e for e in logs if e.step_key == stage]
        times = {e.dagster_event.event_type_value: e.timestamp for e in events
                 if e.dagster_event and e.dagster_event.event_type_value in STEP_EVENTS}
        start = times.get(DagsterEventType.STEP_START.value)
        end = times.get(DagsterEventType.STEP_SUCCESS.value) or times.get(DagsterEventType.STEP_FAILURE.value)
        if start is None or end is None:
            continue
        rows = None
        for e in events:
            if e.dagster_event and e.dagster_event.is_step_materialization:
                value = e.dagster_event.step_materialization_data.materialization.metadata.get(ROWS[stage])
                if value is not None:
                    rows = value.value
                    break
        # Dagster's share: the step's compute has returned at its output (materializations, one per partition, follow)
        outputs = [e.timestamp for e in events if e.dagster_event and e.dagster_event.event_type_value in
                   (DagsterEventType.STEP_OUTPUT.value, DagsterEventType.ASSET_MATERIALIZATION.value)]
        figures[stage] = {"seconds": end - start, "requests": sum(1 for t in request_times if start <= t <= end),
                          "rows": rows, "events": len(events), "peak_mb": memory.peak(start, end) / 2**20,
                          "dagster_tail": end - min(outputs, default=end)}
    return figures


def bench(scale: int, latency_ms: float, local: bool) -> dict:
    """Both runs at one scale; returns {label: {"total": s, "peak_mb": MB, "pg_mb": MB, "stages": {...}}}."""
    started = time.perf_counter()
    server = ServerProcess(2000 * scale, 100_000 * scale, 50 * scale, latency_ms)
    print(f"[{scale}x] sample server ready in {time.perf_counter() - started:.0f} s "
          f"({psutil.Process(server.process.pid).memory_info().rss / 2**20:.0f} MB)", flush=True)
    fake = FakeAIServer(api_key="bench-ai").start()
    root = Path(tempfile.mkdtemp(prefix="aperture-bench-run-", dir="/tmp"))
    data_dir = root / "data"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "APERTURE_MEDIA_SERVER_URL": server.url, "APERTURE_MEDIA_SERVER_API_KEY": API_KEY,
           "APERTURE_DATA_DIR": str(data_dir)}
    if "PYTHONPATH" in os.environ:  # to bench a checkout other than the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if not local:
        env |= {"APERTURE_EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": fake.openai_base_url,
                "OPENAI_API_KEY": "bench-ai"}
    results = {}
    try:
        for label in ("first run", "no-change run"):
            server.reset_counters()
            seconds, _, memory, pg_peak = run(env, root, data_dir)
            times = httpx.get(f"{server.url}/_sample/requests", timeout=60).json()["times"]
            results[label] = {"total": seconds, "peak_mb": memory.peak() / 2**20, "pg_mb": pg_peak / 2**20,
                              "requests": len(times), "stages": stage_figures(data_dir, times, memory)}
            print_run(scale, label, results[label], None, flush=True)
        print_sizes(data_dir, f"[{scale}x] ")
    finally:
        subprocess.run([str(Path(sys.executable).with_name("aperture")), "db", "stop"], env=env, cwd=root,
                       capture_output=True, timeout=60)
        fake.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return results


def ratio(value: float | None, base: float | None) -> str:
    return f" ({value / base:.1f}x)" if value is not None and base else ""


def print_run(scale: int, label: str, r: dict, base: dict | None, flush: bool = False) -> None:
    b = base or {}
    print(f"\n[{scale}x] aperture run, {label}: {r['total']:.1f} s{ratio(r['total'], b.get('total'))}, "
          f"{r['requests']} requests{ratio(r['requests'], b.get('requests'))}, peak memory of aperture's process "
          f"tree {r['peak_mb']:.0f} MB{ratio(r['peak_mb'], b.get('peak_mb'))} (PostgreSQL, not in it: "
          f"{r['pg_mb']:.0f} MB RSS)")
    print("| stage | seconds | requests | rows | Dagster events | Dagster tail s | peak MB |\n"
          "|---|---|---|---|---|---|---|")
    for stage, f in r["stages"].items():
        o = (b.get("stages") or {}).get(stage, {})
        print(f"| {stage} | {f['seconds']:.1f}{ratio(f['seconds'], o.get('seconds'))} "
              f"| {f['requests']}{ratio(f['requests'], o.get('requests'))} "
              f"| {f['rows']}{ratio(f['rows'], o.get('rows')) if isinstance(f['rows'], int | float) else ''} "
              f"| {f['events']}{ratio(f['events'], o.get('events'))} | {f['dagster_tail']:.1f} "
              f"| {f['peak_mb']:.0f}{ratio(f['peak_mb'], o.get('peak_mb'))} |", flush=flush)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1, help="library size as a multiple of 2,000/100,000/50")
    parser.add_argument("--local", action="store_true", help="embed with the local model instead of fake OpenAI")
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()
    base = bench(1, args.latency_ms, args.local)
    results = bench(args.scale, args.latency_ms, args.local) if args.scale != 1 else None
    if results:
        print(f"\n=== {args.scale}x against 1x (ratios in brackets) ===")
        for label in results:
            print_run(args.scale, label, results[label], base[label])
    first, no_change, mb = TARGETS.get(args.scale, TARGETS[1])
    print(f"\ntargets at {args.scale}x: first run < {first} s, no-change run < {no_change} s, "
          f"peak memory < {mb} MB; load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
