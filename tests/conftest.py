"""Shared pytest set-up: quiet TensorFlow and deterministic, small CPU runs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
