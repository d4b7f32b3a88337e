"""Diving-48 builder on a tiny fake download (mp4 videos + V2 JSON lists)."""
import json
import os

import pytest

from input_pipeline.builders import base
from tests.input_pipeline.builders import fakes

_VOCAB = [['Back', '15som', 'NoTwis', 'TUCK'], ['Forward', '25som', '1Twis', 'PIKE'],
          ['Inward', '35som', 'NoTwis', 'TUCK']]


def _manual_dir(root, train=None, test=None):
  root = os.fspath(root)
  train = train or [{'vid_name': 'aaa_00001', 'label': 2, 'start_frame': 0, 'end_frame': 7},
                    {'vid_name': 'bbb_00002', 'label': 0, 'start_frame': 3, 'end_frame': 9}]
  test = test or [{'vid_name': 'ccc_00003', 'label': 1, 'start_frame': 0, 'end_frame': 7}]
  fakes.write_text(f'{root}/Diving48_vocab.json', json.dumps(_VOCAB))
  fakes.write_text(f'{root}/Diving48_V2_train.json', json.dumps(train))
  fakes.write_text(f'{root}/Diving48_V2_test.json', json.dumps(test))
  for seed, item in enumerate(train + test):
    fakes.write_video(f'{root}/rgb/{item["vid_name"]}.mp4', seed=seed)
  return root


def test_builds_train_and_test_with_vocab_class_names(tmp_path):
  builder = fakes.prepare('diving48', _manual_dir(tmp_path / 'm'), tmp_path / 'd',
                          config='res256')
  assert builder.info.features['label'].names[2] == 'Inward 35som NoTwis TUCK'
  train = fakes.examples(builder, 'train')
  assert {k: v[0] for k, v in train.items()} == {'aaa_00001': 2, 'bbb_00002': 0}
  assert train['aaa_00001'][1] == (fakes.FRAMES, 256, 384, 3)
  assert {k: v[0] for k, v in fakes.examples(builder, 'test').items()} == {'ccc_00003': 1}


def test_label_outside_vocab_names_file_and_entry(tmp_path):
  manual = _manual_dir(tmp_path / 'm', test=[{'vid_name': 'ccc_00003', 'label': 48}])
  with pytest.raises(base.BuildError, match=r'^diving48 test: Diving48_V2_test.json\[0\]: '
                     r'label 48 is not in \[0, 3\)'):
    fakes.prepare('diving48', manual, tmp_path / 'd')


def test_missing_video_names_split_and_file(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  os.remove(f'{manual}/rgb/bbb_00002.mp4')
  with pytest.raises(base.BuildError, match=r'^diving48 train: Diving48_V2_train.json\[1\]: '
                     r'no such file: .*rgb/bbb_00002.mp4 ' + fakes.SKIP_HINT + '$'):
    fakes.prepare('diving48', manual, tmp_path / 'd')


def test_zero_length_video_names_split_and_file(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  open(f'{manual}/rgb/ccc_00003.mp4', 'w').close()
  with pytest.raises(base.BuildError, match=r'^diving48 test: Diving48_V2_test.json\[0\]: '
                     r'empty \(zero-byte\) video file: .*ccc_00003.mp4 '
                     + fakes.SKIP_HINT + '$'):
    fakes.prepare('diving48', manual, tmp_path / 'd')
