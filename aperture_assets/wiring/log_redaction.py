"""Secrets never reach Dagster's event log, the compute logs or stderr, whatever a server echoed.

Every record a step's log manager handles (a stage's own log lines and the events Dagster logs for it: the
step failure with its error, a materialization with its metadata) passes this filter before any handler
stores or prints it, so one redaction covers all three.
"""

import logging

from dagster import DagsterEvent, deserialize_value, serialize_value

from aperture_assets.wiring.dagster_internals import record_event, replace_record_event
from aperture_resources.redaction import redact, registered


class RedactingFilter(logging.Filter):
    """Cuts the registered secrets out of a record's message, its exception text and its Dagster event."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not registered():
            return True
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        event = record_event(record)
        if event is not None:
            text = serialize_value(event)
            clean = redact(text)
            if clean != text:
                replace_record_event(record, deserialize_value(clean, DagsterEvent))
        return True


def redact_logs(log: logging.Logger) -> None:
    """Install the filter on `log` (a context's log manager) once."""
    if not any(isinstance(existing, RedactingFilter) for existing in log.filters):
        log.addFilter(RedactingFilter())
