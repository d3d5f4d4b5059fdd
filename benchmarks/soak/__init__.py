"""The soak benchmark's pure pieces (``figures``): the RSS slope fit, the operator log's tracebacks,
the fault and load schedule.  The live run is ``benchmarks/bench_soak.py``."""
