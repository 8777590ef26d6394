"""Claudomator: run AI coding agents on a queue of tasks, unattended, safely and in parallel."""

__version__ = "0.1.0"
