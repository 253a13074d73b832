"""How the graph keeps itself current between the schedules (declarative automation); each stage's
asset names its condition.

- New series reach the catalog (daily sync or the library-change sensor) -> they are embedded at
  once, not at 03:00 (FOLLOW_UPSTREAM), unless the catalog's blocking check failed.
- A user appears on the server (the media_users sensor adds a partition) -> their history and picks
  are built without waiting for a schedule (NEW_USER).
- A user's picks change (weekly schedule, new user, manual backfill) -> their library is rebuilt
  right after (FOLLOW_UPSTREAM): "libraries right after recommendations", not a guessed cron offset.
The schedules keep their cadence; these conditions only add what follows upstream.
"""

from dagster import AutomationCondition

FOLLOW_UPSTREAM = AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
NEW_USER = AutomationCondition.on_missing()
