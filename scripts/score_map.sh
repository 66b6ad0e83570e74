# Sourced by the results scripts: the uncertainty map a method is scored by in docs/results.md.
# DUDES by the distilled std it exists for, every other method by predictive entropy.
score_map() { [ "$1" = dudes ] && echo class_std || echo entropy; }
