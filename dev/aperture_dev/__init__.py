"""Development-only servers for aperture's demo, tests and benchmarks (not part of the runtime package)."""
