import os
import sys

from hypothesis import HealthCheck, settings

# CI runs the same examples every time (a failure there is reproducible); locally, explore.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=15,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_terminal_summary(terminalreporter):
    """How many examples each group of property tests ran (a report, not a test: nothing to assert)."""
    examples = getattr(sys.modules.get("test_properties"), "EXAMPLES", None)
    if examples:
        terminalreporter.write_line(f"property examples run: {sum(examples.values())} {dict(sorted(examples.items()))}")
