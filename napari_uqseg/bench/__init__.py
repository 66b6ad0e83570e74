"""Benchmarks and the reliability suite: ``uqseg bench`` (method costs, memory, the loopback server), ``uqseg loop``
(the review loop with a simulated reader), ``uqseg reliability`` (bad inputs, kill -9, disk full, load), and the
tiny models they and the tests train.

Above the client and the server in the layers (it drives both), beside the napari plugin; nothing at run time
imports it except the CLI.
"""
