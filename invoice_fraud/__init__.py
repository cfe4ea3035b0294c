"""Shared code for invoice fraud detection: schema, features, synthetic data, settings.

Training (``train.py``) and serving (``service.py``) both stand on this package so they
cannot drift apart. It imports nothing else of ours and has no import-time side effects.
"""
