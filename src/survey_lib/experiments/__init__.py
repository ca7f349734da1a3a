"""Experiment cells shared by the reproduction notebooks (thin notebooks, fat library).

Each module holds the module-level (picklable) functions one notebook's grid runs, so that the
notebook only states the protocol, calls :func:`survey_lib.runner.run_grid`, plots and judges.
"""
