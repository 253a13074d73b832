"""One folder per stage, each holding its asset, checks, sensors, job and schedule. `definitions.defs()` collects
every Dagster object defined here with Dagster's own `load_from_defs_folder`; there is no hand-kept list."""
