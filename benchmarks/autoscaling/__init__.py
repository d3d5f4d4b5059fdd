"""Helpers of ``bench_autoscaling.py``: the API server stand-in (``cluster``), the closed loop in
virtual time (``loop``), the scenarios and their figures (``scenarios``) and the plot (``plot``)."""
