"""Per-user "AI Picks - TV" library folders: names, NFOs, the planned tree and the safe, atomic writer."""

from aperture_resources.library.model import Entry, EpisodeSource, LibraryOptions, PickedSeries, Symlink
from aperture_resources.library.tree import TreePlan, plan_user_tree
from aperture_resources.library.writer import WriteStats, remove_user_tree, write_user_tree

__all__ = [
    "Entry",
    "EpisodeSource",
    "LibraryOptions",
    "PickedSeries",
    "Symlink",
    "TreePlan",
    "WriteStats",
    "plan_user_tree",
    "remove_user_tree",
    "write_user_tree",
]
