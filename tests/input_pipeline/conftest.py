"""Input pipeline fixtures (the tiny synthetic set itself: ``tests/conftest.py``)."""
import pytest

from tests.input_pipeline.fakes import make_config


@pytest.fixture
def tiny_config(tiny_data_dir):
  return make_config('synthetic_tiny', tiny_data_dir)
