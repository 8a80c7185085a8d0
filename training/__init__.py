"""Offline half of the service: MNIST -> an evaluated, versioned SavedModel under models/mnist/<version>/."""
