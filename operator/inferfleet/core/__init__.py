"""core layer of inferfleet."""
