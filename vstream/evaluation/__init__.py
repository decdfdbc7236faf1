"""Measuring the cleaner: image metrics, evaluation sets, the convex baseline, held-out photos and the speed benchmark."""
