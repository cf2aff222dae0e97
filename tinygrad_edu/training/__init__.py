"""Training: the loop behind `tinygrad-edu train` (loop), atomic checkpoints, the plots a run
writes, and health (per-layer gradient and update statistics, plain-words warnings)."""
