"""Shared test set-up (kept minimal: browser fixtures live in test_app_browser.py)."""

import os

# Quiet TensorFlow's C++ start-up logging in every test that imports a .keras file.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """Run the browser tests last: pytest-playwright keeps its session-wide event loop
    running in the main thread, which ``asyncio.run`` in later tests would trip over."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
