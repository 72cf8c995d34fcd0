"""Shared pytest configuration: every test runs offline; warnings are errors (pyproject)."""

from __future__ import annotations
