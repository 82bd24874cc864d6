"""Shared test set-up (kept minimal: browser fixtures live in test_app_browser.py)."""

import os

# Quiet TensorFlow's C++ start-up logging in every test that imports a .keras file.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
