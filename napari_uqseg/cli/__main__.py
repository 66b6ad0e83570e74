"""``python -m napari_uqseg.cli``: the ``uqseg`` command."""

from napari_uqseg.cli import main

raise SystemExit(main())
