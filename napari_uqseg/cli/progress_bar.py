"""tqdm progress bars for CLI commands, as ``Progress`` callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from napari_uqseg.core.progress import Progress


@contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A ``Progress`` callback drawing one bar that restarts when its total changes."""
    bar = tqdm(desc=description, unit="step", dynamic_ncols=True)

    def update(done: float, total: float, message: str) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.n = done
        bar.set_postfix_str(message[-60:], refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
