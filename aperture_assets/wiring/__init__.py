"""Dagster plumbing the stages share: resources from settings, job and schedule helpers, the users partitions,
automation conditions and the stage-body decorator."""
