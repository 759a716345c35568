"""The workspace wing's tests (store, batch, accept, export, study, Ray): they use the shared
engine and GENKI-4K faces (tests/conftest.py); each file builds its own real workspace once per
module. A fixture two files of this wing need goes here."""
