"""Fake model servers that let the real agent CLIs run offline in tests."""
