"""Where the tests find the sample files (a copy of the owner's sample data lives under tests/data/)."""

from pathlib import Path

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
CARD_VS_BANK_A = TEST_DATA / "card-vs-bank-a"
