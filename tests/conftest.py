"""Test session wiring: each real service has its own fixture plugin under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.s3",
    "tests.fixtures.clamd",
    "tests.fixtures.smtp",
]
