import os

from hypothesis import HealthCheck, settings

# CI runs the same examples every time (a failure there is reproducible); locally, explore.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=15,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
