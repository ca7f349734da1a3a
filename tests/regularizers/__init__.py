"""Tests of survey_lib.regularizers."""
