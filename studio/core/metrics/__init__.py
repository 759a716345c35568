"""Measures of one surrogate against its original, and re-identification attacks."""
