"""controller layer of inferfleet."""
