"""Stage locks across processes: the per-user stages lock each user of a run, so runs over different users
go side by side (on different workers) while two runs over the same user still take turns; the library stage
keeps one lock for the whole stage."""

import threading
from types import SimpleNamespace

from aperture_assets.wiring.stage import lock_names


def test_per_user_stages_lock_each_user_the_library_stage_the_stage():
    one = SimpleNamespace(has_partition_key=True, has_partition_key_range=False, partition_keys=["alice"])
    many = SimpleNamespace(has_partition_key=False, has_partition_key_range=True, partition_keys=["alice", "bob"])
    assert lock_names("series_watch_history", one) == ["series_watch_history:alice"]
    assert lock_names("series_recommendations", many) == ["series_recommendations:alice",
                                                          "series_recommendations:bob"]
    assert lock_names("series_library", many) == ["series_library"]


def acquires(database, names: list[str], seconds: float) -> bool:
    """Whether another connection gets all of `names` within `seconds` (if not, it keeps waiting, then lets go)."""
    got = threading.Event()

    def take():
        with database.exclusive(*names):
            got.set()

    threading.Thread(target=take, daemon=True).start()
    return got.wait(seconds)


def test_user_locks_block_the_same_user_only(database):
    with database.exclusive("series_watch_history:alice", "series_watch_history:bob"):
        assert acquires(database, ["series_watch_history:carol"], 5)  # another user: at once
        assert not acquires(database, ["series_watch_history:bob"], 0.5)  # the same user waits
    assert acquires(database, ["series_watch_history:bob"], 5)  # until the lock is released


def test_overlapping_sets_in_any_order_wait_instead_of_deadlocking(database):
    with database.exclusive("x:b", "x:a"):
        assert not acquires(database, ["x:a", "x:b"], 0.5)
    assert acquires(database, ["x:b", "x:a"], 5)
