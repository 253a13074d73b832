"""Disk benchmark: what one new library entry costs on a filesystem, the floor under a library's first write.

A first write of 50 users x 12 picks creates ~30,000 inodes (one symlink or .strm per episode). This prints the
cost of creating a symlink (a new inode) and of a hard link (no new inode) with 1 and 4 threads, so a slow
first write can be blamed on the disk or not. Point --dir at the library root's filesystem.

--busy N adds N Python threads that keep the CPU busy, as the HTTP and Dagster threads of a run do. Every
syscall releases the GIL, and getting it back waits for the busy thread (up to the 5 ms switch interval).
This is how a run's per-entry cost grows well above the disk's own.

Run: .venv/bin/python bench/bench_disk.py [--dir /tmp] [--entries 12000] [--busy 1]
"""

import argparse
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TARGET = "/media/tv/Some Series (2020)/Season 01/Some Series - S01E01 - A Long Episode Title.mkv"


def make(folder: str, count: int, link_to: str | None) -> None:
    os.mkdir(folder)
    for i in range(count):
        if link_to is None:
            os.symlink(TARGET, f"{folder}/{i}.mkv")
        else:
            os.link(link_to, f"{folder}/{i}.mkv", follow_symlinks=False)


def per_entry_us(root: str, total: int, threads: int, hard: bool) -> float:
    """Microseconds per entry, `threads` folders written side by side (as the library writer does)."""
    source = None
    if hard:
        source = f"{root}/source.mkv"
        if not os.path.lexists(source):
            os.symlink(TARGET, source)
    run = f"{root}/{'hard' if hard else 'sym'}-{threads}"
    os.mkdir(run)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda n: make(f"{run}/{n}", total // threads, source), range(threads)))
    return (time.perf_counter() - started) / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--entries", type=int, default=12_000)
    parser.add_argument("--busy", type=int, default=0, help="CPU-busy Python threads running alongside")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="aperture-bench-disk-", dir=args.dir)
    done = threading.Event()
    for _ in range(args.busy):
        threading.Thread(target=lambda: [None for _ in iter(done.is_set, True)], daemon=True).start()
    try:
        for threads in (1, 4):
            sym = per_entry_us(root, args.entries, threads, hard=False)
            hard = per_entry_us(root, args.entries, threads, hard=True)
            print(f"{args.dir}, {args.busy} busy: {threads} thread(s): symlink {sym:6.1f} us/entry, "
                  f"hard link {hard:6.1f} us/entry; "
                  f"30,000 new inodes ~ {sym * 30_000 / 1e6:.1f} s")
    finally:
        done.set()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
