"""Surrogate Studio: privacy-preserving surrogate faces that keep expression and pose."""

__version__ = "0.1.0"
