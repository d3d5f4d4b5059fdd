"""The one bridge from API objects to the core: objects, inventory, and the whole Problem.

``problem.problem_from`` is the only way a ``core.Problem`` is built from API objects: the offline
planner (``inferfleet plan``) and the operator (``reconcile``) both call it, so what one decides the
other can replay.
"""
