"""Stage train: the real-vs-fake detector, its training loop, checkpoint and scorer."""
