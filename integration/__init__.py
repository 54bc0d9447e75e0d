"""Root integration tests against real processes (see conftest.py)."""
