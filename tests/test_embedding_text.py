"""The embedded text is stable, complete and capped."""

from aperture_assets.logic.embedding_text import MAX_CHARS, series_text, text_hash


def test_series_text_has_every_spec_field_in_a_stable_order():
    text = series_text("Breaking Bad", 2008, 2013, "Ended", "A chemistry teacher turns to crime.",
                       ["Crime", "Drama"], ["drug trade", "antihero"], "AMC")
    assert text.splitlines() == [
        "Breaking Bad (2008-2013)",
        "Genres: Crime, Drama",
        "Network: AMC",
        "Keywords: drug trade, antihero",
        "A chemistry teacher turns to crime.",
    ]
    assert text_hash(text) == text_hash(series_text("Breaking Bad", 2008, 2013, "Ended",
                                                    "A chemistry  teacher turns to crime.",
                                                    ["Crime", "Drama"], ["drug trade", "antihero"], "AMC"))


def test_series_text_tolerates_missing_fields_and_caps_length():
    assert series_text("Untitled", None, None, None, None, [], [], None) == "Untitled"
    assert series_text("Show", 2020, None, "Continuing", None, [], [], None) == "Show (2020-)"
    long = series_text("Long", 2000, None, None, "word " * 2000, ["Drama"], [], None)
    assert len(long) <= MAX_CHARS and long.endswith("...")
