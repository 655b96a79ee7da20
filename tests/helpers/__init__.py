"""Helpers shared by the test packages: test modules import them from here (or use the
conftest fixtures that wrap them), never from another test module or a conftest.py."""
