"""Planners that read run results and steer cadence through the catalogue's actions."""
