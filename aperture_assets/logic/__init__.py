"""Pure functions of the stages (rows from server items, embedding text, scoring, ranking, explanations):
no Dagster, no I/O, so they are tested without servers."""
