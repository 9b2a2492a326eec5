"""Integration tests: they run the real ansible-playbook (controller only, no lab host)."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: runs real tools on the controller (ansible-playbook), no lab host needed"
    )
