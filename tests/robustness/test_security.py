"""Secrets never leak; the library writer never leaves its root; SQL is only ever parameterised.

The key tests drive the real CLI path (`run_stages` over the spec's jobs, resources built from environment
variables as `aperture run` does) and then read back everything a user or another process could see: every
event of every Dagster run, step failure messages, captured stdout/stderr and logs, every file written."""

import ast
import os
from pathlib import Path

import pytest
from dagster import Definitions, instance_for_test
from dagster._serdes import serialize_value

from aperture_assets.cli.run import run_stages
from aperture_assets.definitions import defs
from aperture_resources.redaction import redact
from aperture_resources.settings import ConfigError, Settings
from tests.robustness.helpers import AI_KEY, MEDIA_KEY, failure_messages, library_tree, ok

PROJECT = Path(__file__).resolve().parents[2]
WRONG_MEDIA_KEY = "wrong-media-key-Hx71Qa"
WRONG_AI_KEY = "sk-wrong-ai-key-Vb38Lm"
SECRETS = (MEDIA_KEY, AI_KEY, WRONG_MEDIA_KEY, WRONG_AI_KEY)


def definitions() -> Definitions:
    """The product's Definitions, with resources read from the (patched) environment as `aperture run` does."""
    return defs()


def everything_recorded(instance) -> str:
    """Every event of every run in the instance, serialised as the UI and the event log store them."""
    out = []
    for run in instance.get_runs():
        out.append(serialize_value(run))
        out += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return "\n".join(out)


def files_text(*roots: Path) -> str:
    out = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_symlink():
                out.append(str(path.readlink()))
            elif path.is_file() and path.stat().st_size < 5_000_000:
                out.append(path.read_bytes().decode(errors="replace"))
            out.append(str(path))
    return "\n".join(out)


@pytest.fixture
def env(make_world, monkeypatch, tmp_path):
    world = make_world()
    data = tmp_path / "data"
    values = {
        "APERTURE_MEDIA_SERVER_TYPE": "jellyfin", "APERTURE_MEDIA_SERVER_URL": world.server.url,
        "APERTURE_MEDIA_SERVER_API_KEY": MEDIA_KEY, "APERTURE_DATABASE_URL": world.database.url,
        "APERTURE_DATA_DIR": str(data), "APERTURE_LIBRARY_ROOT": str(world.root),
        "APERTURE_EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": world.ai.openai_base_url,
        "OPENAI_API_KEY": AI_KEY, "APERTURE_EMBEDDING_MODEL": "text-embedding-3-small",
        "APERTURE_EMBEDDING_DIMENSIONS": "256", "APERTURE_EXPLANATIONS": "on", "APERTURE_CHAT_MODEL": "gpt-4o-mini",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    world.data = data
    return world


def test_api_keys_never_reach_logs_events_errors_or_files(env, monkeypatch, capfd, caplog):
    env.ai.poison = "Breaking Bad"  # one series' text is rejected by the provider (400)
    env.ai.fail_next(2, 500)  # and the first requests fail
    lines: list[str] = []
    with instance_for_test() as instance:
        results = run_stages(definitions(), instance, echo=lines.append)
        assert [r.name for r in results if r.success] == [r.name for r in results], [r.error for r in results]
        assert "sync_series_libraries" in [r.name for r in results]

        monkeypatch.setenv("OPENAI_API_KEY", WRONG_AI_KEY)  # the fake provider echoes a rejected key in full
        env.ai.poison = ""
        with env.database.connect() as conn:
            conn.execute("DELETE FROM series_embeddings")  # so the provider is asked again
        bad_ai = run_stages(definitions(), instance, ["generate_series_embeddings"], echo=lines.append)
        assert not bad_ai[0].success and "OPENAI_API_KEY was rejected" in bad_ai[0].error

        monkeypatch.setenv("APERTURE_MEDIA_SERVER_API_KEY", WRONG_MEDIA_KEY)
        with pytest.raises(ConfigError) as rejected:
            run_stages(definitions(), instance, echo=lines.append)
        assert "APERTURE_MEDIA_SERVER_API_KEY was rejected" in str(rejected.value)
        bad_media = definitions().resolve_job_def("sync_series").execute_in_process(instance=instance,
                                                                                    raise_on_error=False)
        assert not bad_media.success
        messages = failure_messages({"sync_series": bad_media}) + [r.error for r in bad_ai] + [str(rejected.value)]
        assert any("APERTURE_MEDIA_SERVER_API_KEY was rejected" in m for m in messages)
        recorded = everything_recorded(instance)

    captured = capfd.readouterr()
    seen = {
        "dagster events": recorded,
        "step failure messages": "\n".join(messages),
        "cli output": "\n".join(lines) + captured.out + captured.err,
        "python logs": caplog.text,
        "files": files_text(env.root, env.data),
    }
    assert library_tree(env.root)  # the library stage did write files
    for where, text in seen.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {where}"
    assert env.ai.request_count > 0 and "OPENAI_API_KEY" in recorded  # the resource shows the variable's name


def test_a_key_the_server_plants_in_its_data_is_masked_in_every_event_and_log(env, capfd):
    """The server knows the key and may echo it anywhere: here in a title that reaches a warning (the series'
    year is out of range) and the catalog's metadata (the newest series). The one redaction every step's log
    manager applies masks it in the stored events and on stderr; the catalog itself keeps the title."""
    with env.server.state.lock:
        env.server.state.bump()
        series = sorted((i for i in env.server.state.items.values() if i.type == "Series"), key=lambda i: i.id)
        planted = series[0]
        planted.base["Name"] = f"Leak {MEDIA_KEY} {AI_KEY}"
        planted.base["ProductionYear"] = 99999
        planted.extra["DateCreated"] = "2099-01-01T00:00:00.0000000Z"  # the newest, so in the metadata preview
    with instance_for_test() as instance:
        results = run_stages(definitions(), instance, ["sync_series"], echo=lambda line: None)
        assert results[0].success, results[0].error
        recorded = everything_recorded(instance)
    captured = capfd.readouterr()
    with env.database.connect() as conn:
        stored = conn.execute("SELECT name FROM series WHERE id = %s", (planted.id,)).fetchone()[0]
    assert MEDIA_KEY in stored  # data is the server's; only what is logged is masked
    assert "untrusted server data" in recorded and "Leak ***" in recorded
    for secret in (MEDIA_KEY, AI_KEY):
        assert secret not in recorded and secret not in captured.err + captured.out


def test_the_redaction_covers_the_database_password_in_every_spelling():
    settings = Settings(database_url="postgresql://aperture:p%40ss%2Fw0rd-Qz@db.example:5432/aperture",
                        media_server_api_key="media-Kx9", openai_api_key="")
    assert set(settings.secrets) == {"p@ss/w0rd-Qz", "media-Kx9"}
    text = "connect failed for p@ss/w0rd-Qz (postgresql://aperture:p%40ss%2Fw0rd-Qz@db) MEDIA-KX9"
    assert redact(text, settings.secrets) == "connect failed for *** (postgresql://aperture:***@db) ***"


def test_keyed_strm_urls_put_the_key_only_where_the_user_opted_in(env, monkeypatch):
    monkeypatch.setenv("APERTURE_LIBRARY_MODE", "strm")
    monkeypatch.setenv("APERTURE_LIBRARY_STRM_API_KEY", "on")
    with instance_for_test() as instance:
        results = run_stages(definitions(), instance, echo=lambda line: None)
        assert all(r.success for r in results), [r.error for r in results]
        recorded = everything_recorded(instance)
    strm = [p for p in env.root.rglob("*.strm")]
    assert strm and any(MEDIA_KEY in p.read_text() for p in strm)  # the opt-in: the key is inside the URLs
    assert MEDIA_KEY not in recorded
    others = [p for p in env.root.rglob("*") if p.is_file() and p.suffix != ".strm"]
    assert not [p for p in others if MEDIA_KEY in p.read_text(errors="replace")]


# -- the library root is a boundary, even for symlinks already in the tree ------------------------------------

def test_symlinks_planted_in_the_tree_never_lead_the_writer_outside(make_world, clean_run, tmp_path):
    world = make_world(template=clean_run.db_name)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    (outside / "tvshow.nfo").write_text("not yours")
    assert ok(world.run())  # the user folders exist now
    users = sorted(p for p in (world.root / "users").iterdir() if p.is_dir())
    first, second = users[0] / "ai-series", users[1] / "ai-series"
    show = sorted(p for p in first.iterdir() if p.is_dir())[0]
    # 1) a series folder swapped for a link to a directory outside; 2) a whole user's folder replaced by one;
    # 3) a stale entry that points outside
    for path in sorted(show.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    show.rmdir()
    show.symlink_to(outside, target_is_directory=True)
    for path in sorted(second.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    second.rmdir()
    second.symlink_to(outside, target_is_directory=True)
    (first / "Stale Show (1999)").symlink_to(outside, target_is_directory=True)
    before = {p.name: p.read_text() for p in outside.iterdir()}

    results = world.run(("library",))
    assert {p.name: p.read_text() for p in outside.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in outside.iterdir()) == sorted(before)
    if not results["library"].success:  # refused, saying why (today: a user folder that is a symlink)
        assert any("symlink" in m for m in failure_messages(results)), failure_messages(results)
    else:  # repaired in place: real folders again, inside the root
        assert not show.is_symlink() and not second.is_symlink()
        assert library_tree(world.root).keys() == clean_run.tree.keys()


# -- SQL is parameterised -------------------------------------------------------------------------------------

def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _comprehension_vars(node: ast.AST) -> set[str]:
    return {n.id for c in ast.walk(node) if isinstance(c, ast.comprehension) for n in ast.walk(c.target)
            if isinstance(n, ast.Name)}


def unsafe_sql_calls(source: str, filename: str) -> list[str]:
    """`execute(...)` calls whose query is built by f-string, `%` or `str.format` from anything but constants.

    A name counts as constant if it is UPPER_CASE, bound by a comprehension over constants, or a local assigned
    (or looped over) only from constants earlier in the same function; psycopg.sql composition is always fine."""
    tree = ast.parse(source, filename)
    problems = []
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)] + [tree]:
        safe: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if all(n.isupper() or n in safe or n in _comprehension_vars(node.value)
                       for n in _names(node.value) - {"str", "len", "list", "tuple", "zip", "range", "sorted"}):
                    safe |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if isinstance(node, ast.For) and all(n.isupper() or n in safe for n in _names(node.iter)):
                safe |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}

        def constant(expr: ast.AST, safe: set[str] = safe) -> bool:
            local = _comprehension_vars(expr)
            return all(n.isupper() or n in safe or n in local for n in _names(expr))

        for node in ast.walk(func):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "executemany") and node.args):
                continue
            query = node.args[0]
            bad = False
            if isinstance(query, ast.JoinedStr):
                bad = not all(constant(v.value) for v in query.values if isinstance(v, ast.FormattedValue))
            elif (isinstance(query, ast.BinOp) and isinstance(query.op, ast.Mod | ast.Add)) or (
                    isinstance(query, ast.Call) and isinstance(query.func, ast.Attribute)
                    and query.func.attr == "format" and isinstance(query.func.value, ast.Constant)):
                bad = not constant(query)
            if bad:
                problems.append(f"{filename}:{node.lineno}: {ast.unparse(query)[:100]}")
    return sorted(set(problems))


def test_sql_is_parameterised_everywhere():
    files = sorted((PROJECT / "aperture_assets").rglob("*.py")) + sorted((PROJECT / "aperture_resources").rglob("*.py"))
    problems = [p for f in files for p in unsafe_sql_calls(f.read_text(), str(f.relative_to(PROJECT)))]
    assert problems == []


def test_the_sql_checker_catches_value_interpolation():
    bad = '''
def f(conn, name):
    conn.execute(f"SELECT * FROM series WHERE name = '{name}'")
    conn.execute("SELECT * FROM series WHERE name = '%s'" % name)
    conn.execute("SELECT * FROM series WHERE name = '{}'".format(name))
    conn.execute("SELECT * FROM series WHERE name = '" + name + "'")
'''
    good = '''
COLUMNS = ("a", "b")
def g(conn, name):
    names = ", ".join(COLUMNS)
    conn.execute(f"SELECT {names} FROM t WHERE x = %s", (name,))
    conn.execute(sql.SQL("SELECT {} FROM t").format(sql.Identifier(name)))
    for db in ("x", "y"):
        conn.execute(f'CREATE DATABASE "{db}"')
'''
    assert len(unsafe_sql_calls(bad, "bad.py")) == 4
    assert unsafe_sql_calls(good, "good.py") == []


def test_no_secret_in_the_environment_example_or_repr():
    from aperture_resources.settings import Settings

    settings = Settings(media_server_api_key=MEDIA_KEY, openai_api_key=AI_KEY)
    assert MEDIA_KEY not in repr(settings) and AI_KEY not in repr(settings)
    example = PROJECT / ".env.example"
    if example.exists():
        assert os.environ.get("OPENAI_API_KEY", "\0") not in example.read_text()
