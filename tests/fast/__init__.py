"""The fast tier: dispatch, selection and attempt logic over the in-memory store and a scripted
agent (scripted.py), in milliseconds per test."""
