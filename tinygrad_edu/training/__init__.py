"""Training: the loop behind `tinygrad-edu train` (loop), checkpoints, and the plots a run writes."""
