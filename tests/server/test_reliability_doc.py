"""Rewriting docs/reliability.md with new figures keeps its hand-written part."""

from napari_uqseg.bench.reliability.suite import HAND_WRITTEN, keep_hand_written


def test_new_figures_keep_the_hand_written_part():
    notes = f"{HAND_WRITTEN}\n\n## Device sharing\n\nnotes\n"
    assert keep_hand_written("# new figures\n", f"# old figures\n\n| 1 |\n\n{notes}") == f"# new figures\n\n{notes}"
    assert keep_hand_written("# new figures\n", "# old, nothing by hand\n") == "# new figures\n"
    assert HAND_WRITTEN in open("docs/reliability.md").read()  # the hand-written part this keeps exists
