"""Fault and load suite of the server (``uqseg reliability``; see docs/reliability.md)."""
