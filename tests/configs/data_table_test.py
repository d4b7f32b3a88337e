"""The data-set table: every name builds both sections, with the official values."""
import pytest

from configs import data_table
from input_pipeline import registry


def test_every_registry_data_set_has_a_recipe_and_no_other():
  assert list(data_table.RECIPES) == list(registry.SPECS)


@pytest.mark.parametrize('name', registry.SPECS)
def test_every_data_set_builds_a_dataset_and_an_input_section(name):
  d = data_table.dataset_config(name)
  c = data_table.input_config(name)
  assert d.name == name and d.format in ('tfds', 'tfrecord')
  assert c.sampling in ('uniform', 'dense') and c.flip_mode in (
      'no_flip_classes', 'swap_labels', 'off')
  assert set(d.no_flip_classes) >= {k for pair in d.flip_pairs for k in pair}


def test_ssv2_follows_the_official_config():
  d, c = data_table.dataset_config('ssv2'), data_table.input_config('ssv2')
  assert d.no_flip_classes == (86, 87, 93, 94, 166, 167)
  assert (c.sampling, c.num_frames, c.image_size, c.min_resize) == ('uniform', 32, 224, 256)
  assert (c.test_num_clips, c.test_num_crops) == (1, 3)
  assert (c.randaugment_num_ops, c.randaugment_magnitude, c.random_erasing_prob) == (2, 9, 0.25)


def test_k400_samples_densely_with_four_by_three_test_views():
  c = data_table.input_config('k400')
  assert (c.sampling, c.num_frames, c.frame_interval) == ('dense', 32, 2)
  assert (c.test_num_clips, c.test_num_crops) == (4, 3)


def test_synthetic_defaults_are_the_cpu_demo():
  d, c = data_table.dataset_config('synthetic'), data_table.input_config('synthetic')
  assert (d.tfds_name, d.builder_config) == ('reversal_pairs', 'small')
  assert (c.num_frames, c.image_size, c.sampling, c.flip_mode) == (8, 32, 'uniform', 'off')
  assert not c.random_resized_crop
  tiny = data_table.input_config('synthetic_tiny')  # the tests keep crops and label swaps
  assert tiny.random_resized_crop and tiny.flip_mode == 'swap_labels'
  assert c.randaugment_num_ops == 0 and c.mixup_alpha == 0 and c.cutmix_alpha == 0
  assert c.augment_on == 'device'  # the demo and its results table


def test_the_guards_set_augments_on_the_host_where_its_bound_was_measured():
  c = data_table.input_config('synthetic_mini')
  assert (c.augment_on, c.image_size, c.eval_image_size, c.min_resize) == ('host', 16, 16, 16)


def test_unknown_name_lists_the_valid_ones():
  with pytest.raises(ValueError, match='valid names: synthetic, synthetic_tiny'):
    data_table.dataset_config('ssv3')


def test_sections_are_locked_against_misspelled_fields():
  c = data_table.input_config('synthetic')
  c.lock()
  with pytest.raises(AttributeError):
    c.num_frame = 8  # pylint: disable=attribute-defined-outside-init
