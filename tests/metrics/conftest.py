"""The metrics wing's tests (the privacy attacks, the parrot): they use the shared analyzer
and engine (tests/conftest.py); the CelebA people each builds stay in its file. A fixture two
files of this wing need goes here."""
