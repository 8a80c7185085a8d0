"""`make bench`: the service against a floor (same HTTP stack, no work) and a direct baseline (no batching)."""
