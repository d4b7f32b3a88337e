"""Something-Something V2 (TFDS name ``something_something_v2``)."""
from input_pipeline.builders.ssv2.builder import Builder
