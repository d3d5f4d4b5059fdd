"""metrics layer of inferfleet."""
