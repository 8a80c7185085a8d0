"""The evaluation sets: realistic uploads of each kind, made from MNIST test digits and package-shipped data."""
