"""Something-Something V1 (TFDS name ``something_something_v1``)."""
from input_pipeline.builders.ssv1.builder import Builder
