"""Whole-pipeline benchmark: `aperture run` (its own process, as a user runs it) against the large synthetic
library (2,000 series / 100,000 episodes / 50 users) on the sample server (own process, 20 ms latency),
with fake-OpenAI embeddings (default) or the local model (--local). Prints total wall time, time per
stage and peak memory for a first run and a no-change second run.
Targets: full run < 60 s, no-change run < 15 s, peak memory < 1 GB.

Run: .venv/bin/python bench/bench_run.py [--local] [--latency-ms 20]
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aperture_dev.fake_ai_server import FakeAIServer
from common import API_KEY, ServerProcess

STAGE = re.compile(r"^\| (\w+) \| (ok|FAILED) \| ([\d.]+) \|", re.MULTILINE)


def run(env: dict, cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("aperture")), "run"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"aperture run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local", action="store_true", help="embed with the local model instead of fake OpenAI")
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()

    server = ServerProcess(2000, 100_000, 50, args.latency_ms)
    fake = FakeAIServer(api_key="bench-ai").start()
    root = Path(tempfile.mkdtemp(prefix="aperture-bench-run-", dir="/tmp"))
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "APERTURE_MEDIA_SERVER_URL": server.url, "APERTURE_MEDIA_SERVER_API_KEY": API_KEY,
           "APERTURE_DATA_DIR": str(root / "data")}
    if not args.local:
        env |= {"APERTURE_EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": fake.openai_base_url,
                "OPENAI_API_KEY": "bench-ai"}
    try:
        for label in ("first run", "no-change run"):
            seconds, out = run(env, root)
            stages = ", ".join(f"{name} {float(s):.1f}s" for name, _, s in STAGE.findall(out))
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"aperture run, {label}: {seconds:.1f} s total ({stages}); peak memory so far {peak_mb:.0f} MB")
        print("targets: first run < 60 s, no-change run < 15 s, peak memory < 1024 MB")
    finally:
        subprocess.run([str(Path(sys.executable).with_name("aperture")), "db", "stop"], env=env, cwd=root,
                       capture_output=True, timeout=60)
        fake.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
