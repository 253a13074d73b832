"""One-shot pipeline runs for the CLI: the spec's jobs in its "Job Order", each a Dagster run recorded
in the instance (so it shows in the UI), per-user stages as one run over every user partition."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dagster import DagsterInstance, Definitions, build_resources
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from aperture_assets.users import apply_user_partitions, users_partitions

# The spec's Job Order, plus the quality report right after the picks it evaluates.
STAGES: tuple[tuple[str, bool], ...] = (
    ("sync_series", False),
    ("generate_series_embeddings", False),
    ("sync_series_watch_history", True),
    ("generate_series_recommendations", True),
    ("evaluate_recommendations", False),
    ("sync_series_libraries", True),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
SPEC_STAGES = tuple(name for name in STAGE_NAMES if name != "evaluate_recommendations")


@dataclass
class StageResult:
    name: str
    success: bool
    seconds: float
    run_id: str = ""
    error: str = ""
    metadata: dict = field(default_factory=dict)


def run_stages(defs: Definitions, instance: DagsterInstance, selected: Sequence[str] | None = None,
               echo: Callable[[str], None] = print) -> list[StageResult]:
    """Run the selected stages in order; stops at the first failure (later stages would use stale input)."""
    wanted = ("media_server", "database", "pipeline")
    with build_resources({k: v for k, v in (defs.resources or {}).items() if k in wanted}) as res:  # resolves EnvVars
        keys = apply_user_partitions(instance, res.media_server, res.database, res.pipeline)
    ordered = [k for k in instance.get_dynamic_partitions(users_partitions.name) if k in set(keys)]
    echo(f"users: {len(ordered)} enabled")
    results: list[StageResult] = []
    for name, partitioned in STAGES:
        if name not in (selected or SPEC_STAGES):
            continue
        if partitioned and not ordered:
            echo(f"{name}: skipped (no enabled users)")
            continue
        tags = {ASSET_PARTITION_RANGE_START_TAG: ordered[0], ASSET_PARTITION_RANGE_END_TAG: ordered[-1]} \
            if partitioned else {}
        echo(f"{name}: running ...")
        result = defs.resolve_job_def(name).execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        stats = instance.get_run_stats(result.run_id)
        seconds = (stats.end_time or 0) - (stats.start_time or 0)
        stage = StageResult(name, result.success, seconds, result.run_id, "" if result.success else failure(result),
                            materialized_metadata(result))
        results.append(stage)
        echo(f"{name}: {'done' if stage.success else 'FAILED'} in {seconds:.1f}s"
             + (f" - {stage.error}" if stage.error else ""))
        if not stage.success:
            break
    return results


def materialized_metadata(result) -> dict:
    """Plain metadata values of the run's first materialization (the stage summary)."""
    events = result.get_asset_materialization_events()
    if not events:
        return {}
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def failure(result) -> str:
    """The user-facing error of a failed run: the innermost cause's message, first line."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            if error is not None:
                return error.message.strip().splitlines()[0]
    return f"run {result.run_id} failed"
