"""What an operator sees after `make demo` and `aperture dev`, in a real headless Chromium: the asset graph, the
runs, alice's recommendations partition with her picks, and the automation page, none of them showing an error or
a failure (without a media server the sensors skip, naming the variable to set). The screenshots it takes are the
README's (set APERTURE_UPDATE_SCREENS=1 to write them to docs/screens/)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aperture_resources.database import DatabaseResource, resolve_urls

CHROMIUM = Path("/usr/bin/chromium")
APERTURE = str(Path(sys.executable).with_name("aperture"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_SENSORS = ("media_users", "media_library_changes", "library_placeholders")
# what Dagster's pages say when something is wrong (a failed run or tick, a code location that did not load)
ALARMS = ("Failure", "Error", "error", "Could not", "could not", "Something went wrong")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)["data"]


def sensor_ticks(port: int) -> dict[str, list[dict]]:
    """Each sensor's latest ticks ({status, skipReason}), or {} while the code location is not loaded."""
    query = ("{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name sensorState { "
             "ticks(limit: 3) { status skipReason } } } } } } }")
    try:
        nodes = graphql(port, query)["repositoriesOrError"].get("nodes") or []
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {s["name"]: s["sensorState"]["ticks"] for node in nodes for s in node["sensors"]}


def alice_first_pick(data_dir: Path) -> str:
    """The title of alice's top pick, as the database stores it."""
    app_url, _ = resolve_urls("", data_dir)
    with DatabaseResource(url=app_url).connect() as conn:
        row = conn.execute("SELECT s.name FROM latest_recommendations r JOIN series s ON s.id = r.series_id "
                           "JOIN media_users u ON u.id = r.user_id WHERE lower(u.name) = 'alice' "
                           "ORDER BY r.rank LIMIT 1").fetchone()
    assert row, "the demo made no picks for alice"
    return row[0]


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[dict]:
    """The demo on a fresh data dir, then `aperture dev` on a free port, up until each server sensor has ticked."""
    root = tmp_path_factory.mktemp("screens")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "DAGSTER_", "OPENAI_"))}
    env["APERTURE_DATA_DIR"] = str(root / "data")
    try:
        demo = subprocess.run([APERTURE, "demo"], env=env, cwd=root, capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        pick = alice_first_pick(root / "data")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with open(root / "dev.log", "w+") as log:
            dev = subprocess.Popen([APERTURE, "dev", "--port", str(port)], env=env, cwd=root, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
            try:
                deadline = time.monotonic() + 240
                while not all(sensor_ticks(port).get(name) for name in SERVER_SENSORS):
                    assert dev.poll() is None and time.monotonic() < deadline, (root / "dev.log").read_text()[-3000:]
                    time.sleep(1)
                yield {"port": port, "pick": pick, "ticks": sensor_ticks(port)}
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(dev.pid, signal.SIGTERM)
                    dev.wait(30)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(dev.pid, signal.SIGKILL)
    finally:
        subprocess.run([APERTURE, "db", "stop"], env=env, cwd=root, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    if os.environ.get("APERTURE_UPDATE_SCREENS"):
        return Path(__file__).parents[2] / "docs" / "screens"
    return tmp_path_factory.mktemp("shots")


@pytest.fixture(scope="module")
def page(ui):
    """One Chromium tab on the UI, the Dagster community dialog (shown once per new instance) dismissed and the
    navigation hidden (the pages get the screenshots' whole width)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 750})
        tab.goto(f"http://127.0.0.1:{ui['port']}/runs")
        skip = tab.get_by_role("button", name="Skip")
        with contextlib.suppress(sync_api.TimeoutError):
            skip.click(timeout=10_000)
        tab.get_by_text("Hide navigation").click()
        yield tab
        browser.close()


def show(page, ui: dict, path: str, ready: str):
    """Open `path` and wait until `ready` is visible and the page has settled."""
    page.goto(f"http://127.0.0.1:{ui['port']}{path}")
    page.get_by_text(ready, exact=True).first.wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)  # the graph's layout and the status icons fill in after the data


def no_alarm(page) -> str:
    text = page.inner_text("body")
    assert not [word for word in ALARMS if word in text], text[:3000]
    return text


def test_the_asset_graph_shows_every_stage_materialized(ui, page, screens):
    show(page, ui, "/assets/series_recommendations?view=lineage&lineageScope=neighbors&lineageDepth=4",
         "series_catalog")
    text = no_alarm(page)
    for stage in ("series_catalog", "series_embeddings", "series_library"):
        assert stage in text
    page.screenshot(path=screens / "asset-graph.png")


def test_the_runs_list_shows_the_demo_runs_succeeded(ui, page, screens):
    show(page, ui, "/runs", "full_refresh")
    text = no_alarm(page)
    assert "evaluate_recommendations" in text and text.count("Success") >= 2
    page.screenshot(path=screens / "runs.png")


def test_alice_is_found_by_name_and_her_picks_are_listed(ui, page, screens):
    show(page, ui, "/assets/series_recommendations?view=partitions", "alice")
    page.get_by_text("alice", exact=True).first.click()
    page.get_by_text("Latest materialization").wait_for(timeout=30_000)
    pick = page.get_by_text(ui["pick"], exact=False).first
    pick.wait_for(timeout=30_000)  # her top pick, as the database stores it, visible without a click
    text = no_alarm(page)
    assert "partition=" in page.url and "Materialized" in text
    pick.scroll_into_view_if_needed()
    page.screenshot(path=screens / "alice-picks.png")


def test_the_automation_page_shows_no_failed_tick(ui, page, screens):
    for name, ticks in ui["ticks"].items():
        assert all(t["status"] != "FAILURE" for t in ticks), (name, ticks)
    for name in SERVER_SENSORS:  # no media server after the demo: skipped, with the variable to set
        assert ui["ticks"][name][0]["skipReason"].startswith("APERTURE_MEDIA_SERVER_URL is not set"), name
    show(page, ui, "/automation", "media_users")
    text = no_alarm(page)
    for name in (*SERVER_SENSORS, "sync_series_schedule", "sync_series_watch_history_schedule"):
        assert name in text
    page.screenshot(path=screens / "automation.png")
    page.get_by_text("media_users", exact=True).first.click()  # the sensor's page: its latest tick says why
    page.get_by_text("runs requested").first.hover()
    page.get_by_text("APERTURE_MEDIA_SERVER_URL is not set", exact=False).first.wait_for(timeout=30_000)
    no_alarm(page)
    page.screenshot(path=screens / "sensor-skipped.png")
