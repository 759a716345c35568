"""The surrogates wing's tests (anonymize, GAN draws, in context, the method registry): they
use the shared engine and analyzer (tests/conftest.py); each file's held-out set and makers
stay in it. A fixture two files of this wing need goes here."""
