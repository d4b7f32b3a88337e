"""Something-Something V2 builder on a tiny fake download (vp8 webm videos)."""
import json
import os

import numpy as np
import pytest

from input_pipeline.builders import base
from input_pipeline.builders.ssv2 import builder as ssv2
from tests.input_pipeline.builders import fakes

# labels.json as shipped: template without brackets -> index string (not in index order).
_LABELS = {'Putting something on a surface': '2', 'Approaching something with your camera': '0',
           'Pushing something from left to right': '1'}


def _entry(video_id, template):
  return {'id': video_id, 'label': template.replace('[something]', 'a cup'),
          'template': template, 'placeholders': ['a cup']}


def _manual_dir(root, train=None, validation=None, names='labels/{}.json'):
  """A manual dir; names: where the JSONs go ('{}': labels / train / validation)."""
  root = os.fspath(root)
  train = train or [_entry('11', 'Putting [something] on a surface'),
                    _entry('12', 'Pushing [something] from left to right'),
                    _entry('13', 'Approaching [something] with your camera')]
  validation = validation or [_entry('21', 'Pushing [something] from left to right')]
  fakes.write_text(f'{root}/{names.format("labels")}', json.dumps(_LABELS))
  fakes.write_text(f'{root}/{names.format("train")}', json.dumps(train))
  fakes.write_text(f'{root}/{names.format("validation")}', json.dumps(validation))
  for i, item in enumerate(train + validation):
    fakes.write_video(f'{root}/20bn-something-something-v2/{item["id"]}.webm', seed=i)
  return root


def test_template_to_class_removes_brackets_like_mmaction():
  assert ssv2.template_to_class('Putting [something] on [something]') == (
      'Putting something on something')


def test_builds_labels_from_normalised_templates_and_resizes_short_side(tmp_path):
  builder = fakes.prepare('something_something_v2', _manual_dir(tmp_path / 'm'),
                          tmp_path / 'd', num_workers=2)
  assert builder.info.features['label'].names == [
      'Approaching something with your camera', 'Pushing something from left to right',
      'Putting something on a surface']
  train = fakes.examples(builder, 'train')
  assert {k: v[0] for k, v in train.items()} == {'11': 2, '12': 1, '13': 0}
  assert all(shape == (fakes.FRAMES, 128, 192, 3) for _, shape, _ in train.values())
  np.testing.assert_allclose(train['12'][2], fakes.frames(1)[:, 0, 0, 0], atol=4)
  assert {k: v[0] for k, v in fakes.examples(builder, 'validation').items()} == {'21': 1}


def test_unknown_template_names_file_and_entry(tmp_path):
  manual = _manual_dir(tmp_path / 'm', validation=[_entry('21', 'Juggling [something]')])
  with pytest.raises(base.BuildError, match=r'^something_something_v2 validation: '
                     r'labels/validation.json\[0\]: template .Juggling'):
    fakes.prepare('something_something_v2', manual, tmp_path / 'd')


def test_missing_video_names_split_and_file(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  os.remove(f'{manual}/20bn-something-something-v2/12.webm')
  with pytest.raises(base.BuildError, match=r'^something_something_v2 train: '
                     r'labels/train.json\[1\]: no such file: .*/12.webm '
                     + fakes.SKIP_HINT + '$'):
    fakes.prepare('something_something_v2', manual, tmp_path / 'd')


def test_unreadable_video_names_split_and_file(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  fakes.write_text(f'{manual}/20bn-something-something-v2/21.webm', 'not a video')
  with pytest.raises(base.BuildError, match=r'^something_something_v2 validation: '
                     r'labels/validation.json\[0\]: cannot decode video .*/21.webm'):
    fakes.prepare('something_something_v2', manual, tmp_path / 'd', num_workers=2)


def test_missing_labels_file_names_the_release_name_and_mmactions(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  os.remove(f'{manual}/labels/labels.json')
  with pytest.raises(base.BuildError, match=r'^something_something_v2: missing annotation '
                     r'file: none of something-something-v2-labels.json / labels.json in '):
    fakes.prepare('something_something_v2', manual, tmp_path / 'd')


@pytest.mark.parametrize('folder', ['', 'labels/', 'annotations/'])
def test_release_file_names_are_accepted_wherever_the_release_puts_them(tmp_path, folder):
  manual = _manual_dir(tmp_path / 'm', names=f'{folder}something-something-v2-{{}}.json')
  fakes.write_text(f'{manual}/{folder}something-something-v2-test.json', '[{"id": "31"}]')
  builder = fakes.prepare('something_something_v2', manual, tmp_path / 'd')
  assert {k: v[0] for k, v in fakes.examples(builder, 'train').items()} == {
      '11': 2, '12': 1, '13': 0}
  assert set(fakes.examples(builder, 'validation')) == {'21'}


def test_two_files_for_one_role_are_refused_naming_both(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  fakes.write_text(f'{manual}/something-something-v2-train.json', '[]')
  with pytest.raises(base.BuildError, match=r'several annotation files for one role in '
                     r'.*: something-something-v2-train.json, labels/train.json; keep one$'):
    fakes.prepare('something_something_v2', manual, tmp_path / 'd')


def test_missing_manual_dir_is_one_line_naming_data_set(tmp_path):
  with pytest.raises(base.BuildError) as error:
    fakes.prepare('something_something_v2', tmp_path / 'nowhere', tmp_path / 'd')
  message = str(error.value)
  assert message.startswith('something_something_v2: ') and 'nowhere' in message
  assert '\n' not in message
