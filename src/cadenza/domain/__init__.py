"""The pure core: entities, schedules, the governor and the error tree.

Imports only the standard library and cronsim; no IO, no wall clock, no randomness.
"""
