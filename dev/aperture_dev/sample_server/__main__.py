"""Run the sample media server on its own: `python -m aperture_dev.sample_server [options]`.

Point aperture at it to try the product without a real server (APERTURE_MEDIA_SERVER_URL=the printed URL,
APERTURE_MEDIA_SERVER_API_KEY=the --api-key). `--mode` and `--version` pick the flavour: Jellyfin 10.10, 10.11
(the default) or 12 (legacy authorization off), Emby 4.8 (the default) or 4.9. Benchmarks run it as a separate
process, as a real server would be, and read its request counter from GET /_sample/stats.
"""

import argparse
import gc
import signal
import sys
import threading

from aperture_dev.sample_server import SampleServer, load_sample_library, synthetic
from aperture_dev.sample_server.model import DEFAULT_VERSIONS, VERSIONS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m aperture_dev.sample_server", description=__doc__)
    parser.add_argument("--mode", choices=sorted(VERSIONS), default="jellyfin")
    known = "; ".join(f"{mode}: {', '.join(versions)} (default {DEFAULT_VERSIONS[mode]})"
                      for mode, versions in VERSIONS.items())
    parser.add_argument("--version", default=None, metavar="VERSION",
                        help=f"the server version to imitate, in full or short (12, 4.9); {known}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8096)
    parser.add_argument("--api-key", default="sample-key")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--synthetic", metavar="SERIES,EPISODES,USERS",
                        help="serve a generated library instead of the bundled one, e.g. 2000,100000,50")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed, with --synthetic")
    args = parser.parse_args()
    gc.disable()  # building a million objects would trigger many full collections for nothing
    if args.synthetic:
        series, episodes, users = (int(x) for x in args.synthetic.split(","))
        data = synthetic.generate(n_series=series, n_episodes=episodes, n_users=users, seed=args.seed)
    else:
        data = load_sample_library()
    try:
        server = SampleServer(data, mode=args.mode, version=args.version, api_key=args.api_key,
                              latency_ms=args.latency_ms)
    except ValueError as exc:
        parser.error(str(exc))
    gc.freeze()  # a million long-lived items: a full collection would stall requests for seconds at a time
    gc.enable()
    server.start(args.host, args.port)
    print(f"sample {server.mode} {server.version} server at {server.url} (API key {args.api_key!r})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
