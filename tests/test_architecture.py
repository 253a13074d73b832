"""The shape the code promises, checked over the source: server differences live in the media-server
subclasses, pure logic has no Dagster or I/O, Dagster internals are reached through one module, the
environment is read through the settings model, and development servers are not part of the runtime."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("aperture_assets", "aperture_resources")
SERVER_NAMES = {"emby", "jellyfin"}


def sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def server_branches(tree: ast.AST) -> list[int]:
    """Lines comparing something with a server's name (`kind == "Emby"`, `server_type != "jellyfin"`, `in`)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        parts = [node.left, *node.comparators]
        constants = [p for p in parts if isinstance(p, ast.Constant)]
        constants += [e for p in parts if isinstance(p, ast.Tuple | ast.List | ast.Set) for e in p.elts
                      if isinstance(e, ast.Constant)]
        if {str(c.value).lower() for c in constants} & SERVER_NAMES:
            found.append(node.lineno)
    return found


def test_no_branch_on_the_server_type_outside_the_media_server_package() -> None:
    offenders = {}
    for path in sources(*RUNTIME):
        if "aperture_resources/media_server" in relative(path):
            continue
        lines = server_branches(ast.parse(path.read_text()))
        if lines:
            offenders[relative(path)] = lines
    assert offenders == {}


def test_the_branch_detector_sees_a_branch() -> None:
    """Negative control: the detector above finds the shapes it forbids."""
    for code in ('if client.kind == "Emby": pass', 'x = "/emby" if options.server_type == "emby" else ""',
                 'y = 1 if "jellyfin" != kind else 2'):
        assert server_branches(ast.parse(code)), code


def test_pure_logic_has_no_dagster_and_no_io() -> None:
    forbidden = ("dagster", "psycopg", "httpx", "aperture_resources.database", "os", "subprocess", "socket")
    for path in sources("aperture_assets/logic"):
        used = imported_modules(ast.parse(path.read_text()))
        bad = {m for m in used if m.split(".")[0] in forbidden or m in forbidden}
        assert not bad, f"{relative(path)} imports {sorted(bad)}"


def test_dagster_internals_only_through_one_module() -> None:
    allowed = "aperture_assets/wiring/dagster_internals.py"
    for path in sources(*RUNTIME, "bench"):
        used = imported_modules(ast.parse(path.read_text()))
        private = {m for m in used if m.startswith("dagster._")}
        assert not private or relative(path) == allowed, f"{relative(path)} imports {sorted(private)}"


@pytest.mark.parametrize("package", RUNTIME)
def test_the_runtime_never_imports_the_development_servers_at_module_level(package: str) -> None:
    for path in sources(package):
        tree = ast.parse(path.read_text())
        top = {m for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom) for m in imported_modules(node)}
        assert not {m for m in top if m.startswith("aperture_dev")}, relative(path)


def test_the_environment_is_read_through_the_settings_model() -> None:
    """Only the settings model reads APERTURE_* values; the CLI exports resolved ones for child processes and
    the resources check whether a secret came from the environment (to pass it as an EnvVar)."""
    allowed = {"aperture_resources/settings.py", "aperture_assets/wiring/resources.py"}
    for path in sources(*RUNTIME):
        if relative(path) in allowed or relative(path).startswith("aperture_assets/cli/"):
            continue
        text = path.read_text()
        assert "os.environ" not in text and "getenv" not in text, relative(path)


def test_every_stage_folder_holds_its_asset_and_job() -> None:
    stages = [p for p in (ROOT / "aperture_assets" / "defs").iterdir() if p.is_dir() and p.name != "__pycache__"]
    with_assets = {p.name for p in stages if (p / "assets.py").exists()}
    assert with_assets == {"catalog", "embeddings", "watch_history", "recommendations", "library"}
    assert all((ROOT / "aperture_assets" / "defs" / name / "jobs.py").exists() for name in with_assets)
