"""api layer of inferfleet."""
