"""Test session wiring: each real service has its own fixture plugin under tests/fixtures/."""

import os

from hypothesis import settings

# CI replays the same generated examples on every run (derandomize), so a landing is never decided by
# a dice roll; local runs explore new examples each time (and keep failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.s3",
    "tests.fixtures.clamd",
    "tests.fixtures.smtp",
]
