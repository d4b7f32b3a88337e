"""Your own videos: a folder of videos or frame folders + annotation lists (``custom_videos``)."""
from input_pipeline.builders.custom.builder import Builder
