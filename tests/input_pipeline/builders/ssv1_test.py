"""Something-Something V1 builder on a tiny fake download (JPEG frame folders + CSVs)."""
import os

import numpy as np
import pytest

from input_pipeline.builders import base
from tests.input_pipeline.builders import fakes

_CLASSES = ['Holding something', 'Pushing something from left to right',
            'Something falling like a feather or paper']


def _manual_dir(root, train='100;Something falling like a feather or paper\n'
                '101;Holding something\n', validation='200;Holding something\n'):
  root = os.fspath(root)
  fakes.write_text(f'{root}/something-something-v1-labels.csv', '\n'.join(_CLASSES) + '\n')
  fakes.write_text(f'{root}/something-something-v1-train.csv', train)
  fakes.write_text(f'{root}/something-something-v1-validation.csv', validation)
  for seed, video_id in enumerate(['100', '101', '200']):
    fakes.write_frames(f'{root}/20bn-something-something-v1/{video_id}', seed=seed)
  return root


def test_builds_labels_by_line_of_labels_csv(tmp_path):
  builder = fakes.prepare('something_something_v1', _manual_dir(tmp_path / 'm'),
                          tmp_path / 'd', num_workers=2)
  assert builder.info.features['label'].names == _CLASSES
  train = fakes.examples(builder, 'train')
  assert {k: v[0] for k, v in train.items()} == {'100': 2, '101': 0}
  assert train['101'][1] == (fakes.FRAMES, 128, 192, 3)
  np.testing.assert_allclose(train['101'][2], fakes.frames(1)[:, 0, 0, 0], atol=3)
  assert {k: v[0] for k, v in fakes.examples(builder, 'validation').items()} == {'200': 0}


def test_unknown_class_names_file_and_line(tmp_path):
  manual = _manual_dir(tmp_path / 'm', train='100;Holding something\n101;Juggling\n')
  with pytest.raises(base.BuildError, match=r'^something_something_v1 train: '
                     r'something-something-v1-train.csv:2: .*Juggling'):
    fakes.prepare('something_something_v1', manual, tmp_path / 'd')


def test_missing_frame_folder_names_split_and_file(tmp_path):
  manual = _manual_dir(tmp_path / 'm', validation='201;Holding something\n')
  with pytest.raises(base.BuildError, match=r'^something_something_v1 validation: '
                     r'something-something-v1-validation.csv:1: no such file: .*/201 '
                     + fakes.SKIP_HINT + '$'):
    fakes.prepare('something_something_v1', manual, tmp_path / 'd')


def test_corrupt_frame_names_split_and_frame(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  fakes.write_text(f'{manual}/20bn-something-something-v1/101/00003.jpg', 'not a jpeg')
  with pytest.raises(base.BuildError, match=r'^something_something_v1 train: '
                     r'something-something-v1-train.csv:2: cannot decode frame .*101/00003.jpg'):
    fakes.prepare('something_something_v1', manual, tmp_path / 'd')
