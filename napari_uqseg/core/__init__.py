"""numpy-only building blocks: volumes, NIfTI I/O, uncertainty maps, metrics, review ranking, records."""
