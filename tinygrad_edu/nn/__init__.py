"""Building networks: weight initialisation (init), the bundled CNNs (models), optimizers (optim)."""
