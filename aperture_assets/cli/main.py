"""The `aperture` command: run the pipeline, start the Dagster UI, check the setup, manage the database.

Every command resolves the database first (starting the embedded PostgreSQL when
APERTURE_DATABASE_URL is unset) and points Dagster's instance storage at it, so run history
persists across commands with no separate server to install.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from aperture_assets.cli.environment import open_instance, prepare_environment, recover
from aperture_resources.redaction import redact
from aperture_resources.settings import ConfigError, load_settings


def run_pipeline(selected: Sequence[str] | None = None, verbosity: int = 0) -> int:
    """Run the pipeline once through Dagster on the persistent instance, print progress and a summary;
    returns the exit code (1 if a stage failed)."""
    from aperture_assets.cli.output import QUIET, VERBOSE, StageConsole
    from aperture_assets.cli.run import run_stages, stop_on_signals
    from aperture_assets.definitions import defs
    from aperture_assets.wiring import progress
    from aperture_assets.wiring.stage import pool_storage_connections

    out = StageConsole(verbosity, sys.stdout.isatty())
    started = datetime.now(UTC)
    level = "DEBUG" if verbosity >= VERBOSE else "CRITICAL" if verbosity <= QUIET else "WARNING"
    with open_instance() as instance, progress.watching(out):
        recover(instance)
        pool_storage_connections(instance)
        results = stop_on_signals(lambda: run_stages(defs(), instance, selected, echo=out.say, log_level=level),
                                  instance)
    print("\n".join(summary_lines(results, out.metadata, started)))
    failed = [r for r in results if not r.success]
    if failed:
        print(f"aperture: stage {failed[0].name} failed: {redact(failed[0].error or '')}", file=sys.stderr)
    return 1 if failed else 0


def summary_lines(results, metadata: dict, started: datetime) -> list[str]:
    """Per stage: result, time, what changed and what did not; then per enabled user: picks, how many are new
    since their previous run (none if this run kept them), the top three and their library's folder."""
    from aperture_assets.cli.output import changes
    from aperture_assets.cli.run import STAGE_ASSET
    from aperture_resources.catalog_store import catalog_totals
    from aperture_resources.database import DatabaseResource
    from aperture_resources.report_store import new_picks, user_states

    with DatabaseResource(url=os.environ["APERTURE_DATABASE_URL"]).connect() as conn:
        totals = catalog_totals(conn)
        users = [u for u in user_states(conn) if not (u.disabled or u.removed)]
        kept = {u.id for u in users if u.picks_at is not None and u.picks_at < started}  # not made by this run
        fresh = {user_id: 0 if user_id in kept else n for user_id, n in new_picks(conn).items()}
    lines = ["", "| Stage | Result | Seconds | Changed | Unchanged | Dagster run |", "|---|---|---|---|---|---|"]
    for r in results:
        asset = STAGE_ASSET[r.name]
        changed, unchanged = changes(asset, metadata.get(asset, {}))
        if asset == "series_recommendations" and asset in metadata:  # users whose list differs from their last
            moved = sum(1 for n in fresh.values() if n != 0)
            changed, unchanged = f"{moved} users", f"{len(fresh) - moved} users"
        lines.append(f"| {r.name} | {'ok' if r.success else 'FAILED'} | {r.seconds:.1f} | {changed} | {unchanged} "
                     f"| {r.run_id[:8]} |")
    lines += ["", f"catalog: {totals.series} series, {totals.episodes} episodes", "",
              "| User | Picks | New | Top picks | Library folder |", "|---|---|---|---|---|"]
    for u in users:
        new = fresh.get(u.id)
        lines.append(f"| {u.name} | {u.picks}{' (cold start)' if u.cold_start else ''} "
                     f"| {'' if not u.picks else 'all' if new is None else new} | {u.top_picks or ''} "
                     f"| {u.library_path or ''} |")
    return lines


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.require_media_server()
    prepare_environment(settings)
    return run_pipeline(args.select, args.verbosity)


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the bundled sample library on 127.0.0.1 and run the whole pipeline (and the quality report)."""
    from aperture_dev.sample_server import SampleServer, load_sample_library

    from aperture_assets.cli.run import SPEC_STAGES

    server = SampleServer(load_sample_library(), mode="jellyfin", api_key="demo-key").start()
    try:
        os.environ.update({
            "APERTURE_MEDIA_SERVER_TYPE": "jellyfin",
            "APERTURE_MEDIA_SERVER_URL": server.url,
            "APERTURE_MEDIA_SERVER_API_KEY": "demo-key",
        })
        settings = load_settings()
        env = prepare_environment(settings)
        # every demo serves a new sample server: the libraries an earlier demo made went away with its server
        forget_libraries(env["APERTURE_DATABASE_URL"])
        print(f"aperture demo: sample Jellyfin server at {server.url}, data in {settings.data_dir.absolute()}")
        code = run_pipeline(args.select or (*SPEC_STAGES, "evaluate_recommendations"), args.verbosity)
        print(f"aperture demo: {server.request_count} requests to the sample server. "
              "See the runs with `.venv/bin/aperture dev`.")
    finally:
        server.stop()
    return code


def forget_libraries(database_url: str) -> int:
    """Forget the picks libraries aperture recorded (a rebuilt server, or the demo's new sample server); returns
    how many."""
    from aperture_resources.access_store import forget_picks_libraries, picks_libraries
    from aperture_resources.database import DatabaseResource

    with DatabaseResource(url=database_url).connect() as conn:
        known = picks_libraries(conn)
        forget_picks_libraries(conn, known)
    return len(known)


def cmd_dev(args: argparse.Namespace) -> int:
    settings = load_settings()
    prepare_environment(settings)
    with open_instance() as instance:  # the webserver and the daemon start at once: create Dagster's tables first
        recover(instance)
    from aperture_assets.cli.environment import PROJECT_ROOT

    dagster = Path(sys.executable).with_name("dagster")
    # workspace.yaml names the code location "aperture", which the CLI's own runs are filed under
    return supervise([str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", args.host,
                      "-p", str(args.port)])


class Signalled(BaseException):
    """SIGTERM or SIGINT arrived (args: the signal number)."""


def supervise(command: list[str], grace_seconds: float = 5.0) -> int:
    """Run `command` in its own process group; on SIGTERM/SIGINT pass the signal to the whole group and kill
    what is left after `grace_seconds`. Signalled alone, `dagster dev` exits but leaves its code servers running
    (with the terminal's output open) until their 45 s heartbeat timeout. Returns the command's exit code, or
    128 + signum."""

    def signalled(signum: int, _frame: object) -> None:
        raise Signalled(signum)

    child = subprocess.Popen(command, process_group=0)
    previous = {sig: signal.signal(sig, signalled) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    except Signalled as stop:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not leave the group running
        signum = stop.args[0]
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signum)
        with suppress(subprocess.TimeoutExpired):
            child.wait(grace_seconds)
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # whatever is left of the group
        child.wait()
        return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_doctor(args: argparse.Namespace) -> int:
    from aperture_assets.cli.doctor import doctor

    return doctor(print)


def cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "stop":
        from aperture_resources.database import stop_embedded

        print("embedded PostgreSQL stopped" if stop_embedded(settings.data_dir) else "embedded PostgreSQL not running")
        return 0
    from aperture_resources.database import migrate

    env = prepare_environment(settings)
    if args.action == "upgrade":
        migrate(env["APERTURE_DATABASE_URL"])
        print("database schema is up to date")
    elif args.action == "forget-libraries":
        known = forget_libraries(env["APERTURE_DATABASE_URL"])
        print(f"forgot {known} picks libraries; the next run finds or creates each user's library again")
    else:
        print(env["APERTURE_DATABASE_URL"])
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    from aperture_assets.cli.user import user

    return user(args, print)


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    from aperture_assets.cli import picks
    from aperture_assets.cli.run import STAGE_NAMES
    from aperture_assets.cli.user import add_arguments

    parser = argparse.ArgumentParser(prog="aperture", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"aperture {version('aperture')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func, text in (("run", cmd_run, "run the whole pipeline once, in order, and print a summary"),
                             ("demo", cmd_demo, "run the pipeline against the bundled sample server (no setup)")):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--select", nargs="+", metavar="STAGE", choices=STAGE_NAMES,
                             help=f"only these stages, in pipeline order: {', '.join(STAGE_NAMES)} "
                                  "(default: all but evaluate_recommendations, which the demo adds)")
        loudness = command.add_mutually_exclusive_group()
        loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=0,
                              help="also print Dagster's event lines (steps, outputs, materializations)")
        loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                              help="print only errors and the final summary (for cron)")
        command.set_defaults(func=func)
    dev = sub.add_parser("dev", help="start the Dagster UI (webserver and daemon) with the embedded defaults",
                         description="Start the Dagster UI and daemon: materialize, schedules, sensors, backfills.")
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    dev.add_argument("--port", type=int, default=3000, help="port to listen on (default: %(default)s)")
    dev.set_defaults(func=cmd_dev)
    sub.add_parser("doctor", help="check configuration, database, media server, AI provider and library root",
                   description="Check every setting, then the database, the media server, the AI provider and "
                   "the library root; say what is wrong and how to fix it.").set_defaults(func=cmd_doctor)
    picks.add_arguments(sub)
    user = sub.add_parser("user", help="show or change one user's genre and tag exclusions (applied on the next run)",
                          description="Show or change one user's genre and tag exclusions; several flags apply "
                          "together, and a name the catalog does not know changes nothing.")
    add_arguments(user)
    user.set_defaults(func=cmd_user)
    db = sub.add_parser("db", help="database maintenance", description="Database maintenance.")
    db.add_argument("action", choices=["upgrade", "url", "stop", "forget-libraries"],
                    help="upgrade: apply migrations; url: print the database's connection string (a libpq DSN "
                    "with its password); stop: stop the embedded PostgreSQL; forget-libraries: forget the picks "
                    "libraries aperture made (after a server rebuild)")
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dotenv import load_dotenv

    load_dotenv(".env", override=False)  # same convention as `dagster dev`
    warnings.filterwarnings("ignore", message=".*(beta|preview).*", category=Warning)  # Dagster API notices
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"aperture: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from aperture_resources.media_server import MediaServerError

        if isinstance(exc, MediaServerError | RuntimeError):
            print(f"aperture: {redact(str(exc))}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
