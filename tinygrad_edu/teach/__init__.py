"""Tools for learning: gradcheck, explain (an op's backward step by step), summary (a model's
table), reference (slow, obviously-correct SciPy versions of conv and pooling, the tests' oracle)."""
