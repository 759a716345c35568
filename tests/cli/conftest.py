"""The studio command as a user runs it: help and arguments, bad inputs and the whole corpus
of odd inputs, each through the real command in a child process. They use the shared faces,
engine and simulated crowd (tests/conftest.py)."""
