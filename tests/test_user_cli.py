"""`aperture user NAME ...`: per-user genre and tag exclusions, checked against the catalog, stored with its
spelling, applied all together or not at all, and shown combined with the global APERTURE_EXCLUDE_* values
exactly as the recommendations stage combines them (effective_exclusions)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aperture_assets.cli.main import main
from aperture_resources.preference_store import (
    UserPreferences,
    catalog_genres,
    effective_exclusions,
    load_preferences,
)

USERS = [("u1", "Alice", False), ("u2", "Bob", True), ("u3", "Alicia", False)]
SERIES = [("s1", ["Horror", "Drama"], ["gore"]), ("s2", ["History", "Documentary"], ["war"]),
          ("s3", ["Comedy", "horror"], ["Sitcom"]), ("s4", ["Reality"], ["Contest"])]


@pytest.fixture
def cli(database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> Iterator:
    """main() on the test database, in a clean environment; returns (exit code, stdout, stderr)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("APERTURE_", "OPENAI_", "OLLAMA_")) or name == "DAGSTER_HOME":
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    os.environ.update({"APERTURE_DATA_DIR": str(tmp_path / "data"), "APERTURE_DATABASE_URL": database.url})
    with database.connect() as conn:
        conn.cursor().executemany("INSERT INTO media_users (id, name, is_disabled) VALUES (%s, %s, %s)", USERS)
        conn.execute("INSERT INTO media_users (id, name, removed_at) VALUES ('u9', 'Gone', now())")
        conn.cursor().executemany("INSERT INTO series (id, library_id, name, genres, tags) "
                                  "VALUES (%s, 'lib', %s, %s, %s)", [(i, i, g, t) for i, g, t in SERIES])
        conn.execute("INSERT INTO series (id, library_id, name, genres, tags, removed_at) "
                     "VALUES ('s5', 'lib', 'Removed', '{Western}', '{cowboys}', now())")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["user", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    os.environ.clear()
    os.environ.update(saved)


def stored(sql) -> dict[str, tuple]:
    rows = sql("SELECT user_id, exclude_genres, include_genres, exclude_tags FROM user_preferences")
    return {row[0]: tuple(row[1:]) for row in rows}


def test_rules_are_stored_with_the_catalog_spelling_and_flags_apply_together(cli, sql) -> None:
    code, out, err = cli("alice", "--exclude-genre", "HORROR", "--exclude-genre", "reality",
                         "--exclude-tag", "sitcom", "--include-genre", "documentary")
    assert (code, err) == (0, "")
    assert stored(sql) == {"u1": (["Horror", "Reality"], ["Documentary"], ["Sitcom"])}
    assert "saved Alice's rules" in out and "applied on the next recommendations run" in out

    # include takes a genre out of the exclusions, exclude takes it out of the includes, clear out of both
    assert cli("u1", "--include-genre", "Horror", "--exclude-genre", "Documentary", "--clear-tag", "SITCOM")[0] == 0
    assert stored(sql) == {"u1": (["Documentary", "Reality"], ["Horror"], [])}
    assert cli("ALICE", "--clear-genre", "horror", "--clear-genre", "Reality")[0] == 0
    assert stored(sql) == {"u1": (["Documentary"], [], [])}


def test_an_unknown_genre_names_close_ones_and_writes_nothing(cli, sql) -> None:
    cli("Alice", "--exclude-tag", "gore")
    before = stored(sql)
    code, out, err = cli("Alice", "--exclude-genre", "Drama", "--exclude-genre", "Horor", "--exclude-tag", "zzzz")
    assert code == 2 and "Traceback" not in out + err
    assert "unknown genre 'Horor'; close: Horror, History" in err
    assert "unknown tag 'zzzz'; no tag like it in the catalog" in err
    assert stored(sql) == before  # Drama was valid, but nothing of the call was written

    code, _, err = cli("Alice", "--exclude-genre", "Western")  # only a removed series has it
    assert code == 2 and "unknown genre 'Western'" in err
    code, _, err = cli("Alice", "--exclude-genre", "Drama", "--include-genre", "drama")
    assert code == 2 and "genre 'Drama' is both excluded and included" in err
    assert stored(sql) == before


def test_an_unknown_user_is_one_sentence_with_close_names(cli, sql) -> None:
    code, out, err = cli("Alise", "--exclude-genre", "Horror")
    assert code == 2 and "Traceback" not in out + err
    assert err.strip() == "aperture: no user named 'Alise' among the 3 synced users; close: Alice, Alicia."
    code, _, err = cli("Gone", "--show")  # removed from the server
    assert code == 2 and "no user named 'Gone'" in err
    assert stored(sql) == {}


def test_show_combines_global_exclusions_with_the_users_own(cli, sql, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APERTURE_EXCLUDE_GENRES", "horror, Reality")
    monkeypatch.setenv("APERTURE_EXCLUDE_TAGS", "war")
    code, out, _ = cli("bob", "--include-genre", "Horror", "--exclude-genre", "Comedy", "--exclude-tag", "Gore")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "saved Bob's rules"
    assert lines[1] == "Bob (u2) (disabled on the server: gets no picks)"
    assert "  excluded genres: Comedy (own), Reality (APERTURE_EXCLUDE_GENRES)" in lines  # horror let back in
    assert "  let back in despite APERTURE_EXCLUDE_GENRES: Horror" in lines
    assert "  excluded tags: gore (own), war (APERTURE_EXCLUDE_TAGS)" in lines
    assert lines[-1] == "  applied on the next recommendations run"

    code, shown, _ = cli("Bob", "--show")
    assert code == 0 and shown.splitlines() == lines[1:]  # --show alone changes nothing and prints the same


def test_reset_forgets_the_users_own_rules_only(cli, sql, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APERTURE_EXCLUDE_GENRES", "Reality")
    cli("Alice", "--exclude-genre", "Drama", "--include-genre", "Reality")
    cli("Alicia", "--exclude-tag", "war")
    code, out, _ = cli("alice", "--reset")
    assert code == 0
    assert stored(sql) == {"u3": ([], [], ["war"])}
    assert "Alice has no own rules now: only the global ones apply" in out
    assert "  excluded genres: Reality (APERTURE_EXCLUDE_GENRES)" in out
    # --reset with other flags: the old rules go, the new ones are kept, in one call
    assert cli("Alicia", "--reset", "--exclude-genre", "comedy")[0] == 0
    assert stored(sql) == {"u3": (["Comedy"], [], [])}


def test_the_stage_reads_every_user_even_without_a_row(cli, database) -> None:
    cli("Alice", "--exclude-genre", "Drama")
    with database.connect() as conn:
        prefs = load_preferences(conn, ["u1", "u2"])
        genres = catalog_genres(conn)
    assert prefs == {"u1": UserPreferences("u1", ["Drama"], [], []), "u2": UserPreferences("u2", [], [], [])}
    assert [g.lower() for g in genres] == ["comedy", "documentary", "drama", "history", "horror", "horror",
                                           "reality"]
    assert "Western" not in genres  # removed series do not count


def test_effective_exclusions_lets_a_user_back_in_and_ignores_case() -> None:
    prefs = UserPreferences("u", exclude_genres=["Comedy"], include_genres=["HORROR"], exclude_tags=["Gore"])
    assert effective_exclusions(prefs, [" horror", "Reality", ""], ["War"]) == (
        {"comedy", "reality"}, {"gore", "war"})
    assert effective_exclusions(UserPreferences("v"), ["Horror"], []) == ({"horror"}, set())


def test_why_says_what_the_user_watched_and_what_viewers_like_them_watched() -> None:
    from aperture_assets.cli.picks import evidence_text

    lines = evidence_text([
        {"name": "The Wire", "similarity": 0.81, "signal": "favourite", "source": "content"},
        {"name": "Ozark", "similarity": 0.4, "signal": "watched", "source": "content+collaborative"},
        {"name": "Narcos", "signal": "watched", "source": "collaborative", "co_watch_weight": 0.3},
        {"name": "Dexter", "similarity": 0.7, "signal": "dropped"},
    ])
    assert lines == ["because you watched The Wire (0.81) [favourite], Ozark (0.40) [watched]",
                     "viewers who watched Ozark, Narcos also watched it", "held back by Dexter (dropped)"]
