"""The evaluation wing's tests (the study, realism, the generator's check): they use the
shared engine and analyzer (tests/conftest.py); each file's people and runs stay in it. A
fixture two files of this wing need goes here."""
