"""Training fixtures live in tests/conftest.py (shared with the replay tests)."""
