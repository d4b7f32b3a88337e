"""Checkpoint integrity: which steps are committed, their checksums, and whether to trust one.

Once a step a run saved is committed, process 0 writes ``checksums.json`` into it (SHA-256
of every file; :func:`seal`). :func:`verify` then says whether the manifest vouches for a
step (OK), shows it corrupt (BAD) or cannot vouch for it (UNVERIFIED: missing, unreadable,
or a file it does not list); an unverified step is trusted only after a restore and a
finite check (:func:`nonfinite_leaf`), and no manifest is ever written over it (that would
bless its corruption). Every path goes through :mod:`tps_jax.workdir` (local disk and
``gs://`` alike).
"""
import hashlib
import json
from typing import Dict, List, Optional, Tuple

from absl import logging
import jax

from tps_jax import workdir as wd

CHECKSUMS = wd.CHECKSUMS
COMMIT_FILE = 'commit_success.txt'  # orbax's commit mark where there is no rename (gs://)


def committed_steps(directory: str) -> List[int]:
  """The committed steps in ``directory``, oldest first; reads nothing else.

  Orbax commits a step by renaming its temporary directory to the bare step number on a
  local disk, and by writing ``commit_success.txt`` into it on an object store.
  """
  names = [d for d in wd.listdir(directory) if d.isdigit()]
  if wd.is_url(directory):
    return sorted(int(d) for d in names if wd.exists(wd.join(directory, d, COMMIT_FILE)))
  return sorted(int(d) for d in names if wd.isdir(wd.join(directory, d)))


def _file_digests(step_dir: str) -> Dict[str, str]:
  digests = {}
  for rel in wd.files_under(step_dir):
    if not rel.startswith(CHECKSUMS):
      digests[rel] = hashlib.sha256(wd.read_bytes(wd.join(step_dir, rel))).hexdigest()
  return digests


def write_checksums(step_dir: str) -> None:
  """Records the SHA-256 of every file of a committed (finalised) step directory.

  Only for steps this run saved: a manifest written over a step of unknown history would
  bless whatever corruption it already holds.
  """
  path = wd.join(step_dir, CHECKSUMS)
  if wd.exists(path):
    return
  wd.write_atomic(path, json.dumps(_file_digests(step_dir), indent=0, sort_keys=True))


OK, BAD, UNVERIFIED = 'ok', 'bad', 'unverified'


def _read_manifest(step_dir: str) -> Tuple[Optional[Dict[str, str]], str]:
  """``(manifest, '')``, or ``(None, why no manifest can vouch for the step)``."""
  path = wd.join(step_dir, CHECKSUMS)
  if not wd.exists(path):
    return None, f'no {CHECKSUMS}'
  try:
    manifest = json.loads(wd.read_text(path))
  except (OSError, ValueError) as e:
    return None, f'{CHECKSUMS} unreadable ({one_line(e)})'
  if not isinstance(manifest, dict) or not manifest or not all(
      isinstance(k, str) and isinstance(v, str) for k, v in manifest.items()):
    return None, f'{CHECKSUMS} is not a map of file to SHA-256 ({str(manifest)[:40]})'
  return manifest, ''


def verify(step_dir: str) -> Tuple[str, str]:
  """Whether ``step_dir``'s manifest vouches for every one of its files.

  Returns:
    ``(OK, '')``: ``checksums.json`` lists every file and all match. ``(BAD, why)``: a listed
    file is missing or differs (corrupt). ``(UNVERIFIED, why)``: no usable manifest, or a
    file it does not list; such a step is only used after a restore and a finite check.
  """
  expected, why = _read_manifest(step_dir)
  if expected is None:
    return UNVERIFIED, why
  actual = _file_digests(step_dir)
  for rel in sorted(expected):
    if rel not in actual:
      return BAD, f'{rel} is missing'
    if actual[rel] != expected[rel]:
      return BAD, f'{rel} does not match its checksum (corrupted)'
  unlisted = sorted(set(actual) - set(expected))
  if unlisted:
    return UNVERIFIED, f'{unlisted[0]} is not listed in {CHECKSUMS}'
  return OK, ''


def nonfinite_leaf(tree) -> Optional[str]:
  """The path of the first floating-point leaf of ``tree`` holding a NaN or inf, or None."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    dtype = getattr(leaf, 'dtype', None)
    if dtype is not None and jax.numpy.issubdtype(dtype, jax.numpy.inexact):
      if not bool(jax.numpy.isfinite(leaf).all()):
        return jax.tree_util.keystr(path)
  return None


def warn_unverified(step_dir: str, why: str) -> None:
  logging.warning('checkpoint %s is unverified (%s): it restores and is finite, so it is '
                  'used, but no checksums vouch for it (none are written over it)',
                  step_dir, why)


def seal(manager, directory: str, saved: set, *, finished: bool) -> None:
  """Writes ``checksums.json`` into the committed steps this run saved (process 0)."""
  if jax.process_index() != 0:
    return
  done = committed_steps(directory)
  if not finished and manager.is_saving_in_progress():
    done = done[:-1]
  for step in done:
    if step in saved:
      write_checksums(wd.join(directory, str(step)))


def one_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0] if text else ""}'[:300]
