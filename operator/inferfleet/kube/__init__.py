"""kube layer of inferfleet."""
