"""The offline what-if planner behind ``inferfleet plan``: reading manifests, what-if flags as data,
and the report (one JSON document, rendered as tables too)."""
