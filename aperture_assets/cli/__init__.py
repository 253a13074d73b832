"""The `aperture` command line."""

from aperture_assets.cli.main import main

__all__ = ["main"]
