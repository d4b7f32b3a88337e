"""Diving-48 V2 (TFDS name ``diving48``)."""
from input_pipeline.builders.diving48.builder import Builder
