"""Tests of the datalab-ocr command line."""
