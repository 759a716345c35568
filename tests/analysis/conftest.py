"""The analysis wing's tests: they use the shared analyzer and real faces (tests/conftest.py);
a fixture one file needs (the search analyzer, the dlib network, the 7-class judge) stays in
that file. A fixture two files of this wing need goes here."""
