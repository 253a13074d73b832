"""`dead_run_recovery`: the daemon's share of crash recovery (see wiring/recovery.py). A run whose process was
killed keeps its pool slot, and every later run waits for that pool; the CLI recovers such runs when it starts,
and this sensor does so while only the daemon runs."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from aperture_assets.wiring.recovery import recover_dead_runs


@sensor(
    name="dead_run_recovery",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Marks failed the runs whose process on this machine is gone (killed or crashed) and frees the "
    "pool slots of runs that are no longer in progress, so later runs do not wait for them forever.",
)
def dead_run_recovery(context: SensorEvaluationContext) -> SkipReason:
    done = recover_dead_runs(context.instance)
    for line in done:
        context.log.warning(line)
    return SkipReason("; ".join(done) or "no dead runs, no stray pool slots")
