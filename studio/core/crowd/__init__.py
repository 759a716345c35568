"""Crowd labels: the files (MTurk, Label Studio, mapping, truth), statistics, report, power."""
