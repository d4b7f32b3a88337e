"""Checkpoint integrity (tps_jax.integrity): what a step's manifest vouches for, on plain
step directories and on orbax's."""
import json
import os

import numpy as np
import pytest

from tests.checkpoints_test import _manifest, _params, _saved, _write_manifest
from tps_jax import integrity


def _step(root, step, files):
  """A committed step directory holding ``files`` ({relative path: bytes})."""
  step_dir = os.path.join(root, str(step))
  for rel, data in files.items():
    os.makedirs(os.path.dirname(os.path.join(step_dir, rel)), exist_ok=True)
    with open(os.path.join(step_dir, rel), 'wb') as f:
      f.write(data)
  return step_dir


FILES = {'state/d/chunk': bytes(range(256)) * 4, 'state/_METADATA': b'{"a": 1}',
         'meta/metadata': b'{}'}


def test_committed_steps_are_the_numbered_directories_oldest_first(tmp_path):
  for step in (10, 2):
    _step(tmp_path, step, FILES)
  os.makedirs(tmp_path / '3.orbax-checkpoint-tmp-1')  # a save in flight
  os.makedirs(tmp_path / 'bad_4_20260101T000000')     # moved aside
  (tmp_path / '5').write_text('not a directory')
  assert integrity.committed_steps(str(tmp_path)) == [2, 10]


def test_written_checksums_verify_and_are_never_rewritten(tmp_path):
  step_dir = _step(tmp_path, 1, FILES)
  integrity.write_checksums(step_dir)
  manifest = json.loads(open(os.path.join(step_dir, integrity.CHECKSUMS)).read())
  assert sorted(manifest) == sorted(FILES)
  assert integrity.verify(step_dir) == (integrity.OK, '')
  with open(os.path.join(step_dir, 'state/d/chunk'), 'r+b') as f:
    f.write(b'\xff')
  integrity.write_checksums(step_dir)  # exists: never written over (would bless the flip)
  assert integrity.verify(step_dir) == (integrity.BAD,
                                        'state/d/chunk does not match its checksum (corrupted)')


def test_a_listed_file_that_is_gone_is_bad(tmp_path):
  step_dir = _step(tmp_path, 1, FILES)
  integrity.write_checksums(step_dir)
  os.remove(os.path.join(step_dir, 'meta/metadata'))
  assert integrity.verify(step_dir) == (integrity.BAD, 'meta/metadata is missing')


def test_an_unreadable_manifest_is_unverified(tmp_path):
  step_dir = _step(tmp_path, 1, dict(FILES, **{integrity.CHECKSUMS: b'{cut sh'}))
  status, why = integrity.verify(step_dir)
  assert status == integrity.UNVERIFIED and why.startswith('checksums.json unreadable (')


class _Manager:  # what seal asks of an orbax manager
  def __init__(self, saving):
    self.saving = saving

  def is_saving_in_progress(self):
    return self.saving


@pytest.mark.parametrize('saving', [False, True])
def test_seal_writes_only_the_steps_this_run_saved_and_not_one_in_flight(tmp_path, saving):
  for step in (1, 2, 3):
    _step(tmp_path, step, FILES)
  integrity.seal(_Manager(saving), str(tmp_path), {2, 3}, finished=False)
  sealed = [s for s in (1, 2, 3) if os.path.exists(tmp_path / str(s) / integrity.CHECKSUMS)]
  assert sealed == ([2] if saving else [2, 3])


def test_nonfinite_leaf_names_the_first_float_leaf_with_nan_or_inf():
  tree = {'a': np.ones(3, np.float32), 'b': {'c': np.array([1.0, np.inf], np.float32)},
          'n': np.array([2**31 - 1], np.int32)}
  assert integrity.nonfinite_leaf(tree) == "['b']['c']"
  assert integrity.nonfinite_leaf({'a': np.zeros(2)}) is None


def test_a_sealed_step_verifies(tmp_path):
  _, step_dir = _saved(tmp_path, _params())
  assert integrity.verify(step_dir) == (integrity.OK, '')


def test_a_step_without_a_manifest_is_unverified_not_trusted(tmp_path):
  _, step_dir = _saved(tmp_path, _params())
  os.remove(os.path.join(step_dir, integrity.CHECKSUMS))
  assert integrity.verify(step_dir) == (integrity.UNVERIFIED, 'no checksums.json')


def test_a_file_the_manifest_does_not_list_makes_the_step_unverified(tmp_path):
  _, step_dir = _saved(tmp_path, _params())
  manifest = _manifest(step_dir)
  unlisted = sorted(manifest)[0]
  del manifest[unlisted]
  _write_manifest(step_dir, manifest)
  assert integrity.verify(step_dir) == (
      integrity.UNVERIFIED, f'{unlisted} is not listed in checksums.json')


@pytest.mark.parametrize('manifest', [None, [], {}, {'state/x': 1}, 'text'])
def test_a_manifest_that_is_not_a_map_of_digests_is_unverified_not_a_crash(tmp_path, manifest):
  _, step_dir = _saved(tmp_path, _params())
  _write_manifest(step_dir, manifest)
  status, why = integrity.verify(step_dir)
  assert status == integrity.UNVERIFIED and why.startswith('checksums.json is not a map')
