"""The refiner wing's tests: the pairs folder and the in-context maker stay in
test_refiner.py. A fixture two files of this wing need goes here."""
