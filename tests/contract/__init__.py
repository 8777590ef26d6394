"""The store contract suite: the same tests on every backend (see backends.py)."""
