"""Kinetics-400 (TFDS name ``kinetics400``)."""
from input_pipeline.builders.kinetics400.builder import Builder
