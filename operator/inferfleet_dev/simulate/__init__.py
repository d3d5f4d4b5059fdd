"""The fleet simulator (``inferfleet simulate``): simulated vLLM replicas for the pods that are Ready.

Owns nothing itself; the parts are ``engine`` (one replica's continuous-batching loop, pure, clock
injected), ``calibrate`` (step-time constants from the roofline), ``load`` (offered load profiles
and Poisson arrivals), ``metrics`` (vLLM's Prometheus exposition), ``sim`` (the fleet of replicas
and their pools), ``fleet`` (which replicas exist, from the API server), ``server`` (HTTP: /metrics
and /control) and ``cli`` (the command line).  Dev harness only: never in the runtime image.
"""
