"""The project's own sample media server: a Jellyfin/Emby-compatible HTTP server over a bundled sample
library (or a generated large one), used by the demo, the tests and the benchmarks."""

import json
from pathlib import Path

from aperture_dev.sample_server import synthetic
from aperture_dev.sample_server.server import SampleServer

SAMPLE_LIBRARY = Path(__file__).with_name("sample_library.json")


def load_sample_library() -> dict:
    """The bundled sample library description (see DATA_SCHEMA.md)."""
    return json.loads(SAMPLE_LIBRARY.read_text(encoding="utf-8"))


__all__ = ["SAMPLE_LIBRARY", "SampleServer", "load_sample_library", "synthetic"]
