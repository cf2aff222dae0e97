"""Tools for learning: gradcheck, explain (an op's backward step by step, with numbers), summary
(a model's table), reference (slow, obviously-correct SciPy versions of conv and pooling, the
tests' oracle), pictures (animations of conv and pooling and their gradients) and check (a
learner's own NumPy backward, checked and its mistake named)."""
