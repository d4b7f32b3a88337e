"""The run directory: every file name of a run, and the one path layer they all go through.

A run directory is a local path or an object-store URL (``gs://bucket/runs/x``). Every
read, write, listing and rename of a run goes through this module (``etils.epath``, the
path library orbax uses), so the same code holds on a local disk and on GCS; nothing calls
``os.path.abspath`` on a URL (that made a local ``./gs:/...`` folder).

``gs://`` goes through fsspec/gcsfs (``EPATH_USE_TF=false``, set in ``tps_jax/__init__``
before etils picks a backend): one client for our files and orbax's directories, and one
that honours ``STORAGE_EMULATOR_HOST`` (TensorFlow's GCS filesystem has a fixed endpoint).

What is atomic where: a whole-object write to GCS is atomic (readers see the old or the
new object), so :func:`write_atomic` is one PUT there and a temporary file + ``os.replace``
on a local disk. Object stores have no append and no directory rename: ``history.jsonl``
is rewritten whole on each write there (:mod:`tps_jax.reporting`), and :func:`rename` of a
directory is copy-then-delete (not atomic; only used to move a bad step aside, which a
crash at worst leaves in both places).
"""
import errno
import io
import os
import re
import shutil
from typing import Iterator, List, Optional, Union

from etils import epath
import fsspec.config

# Listings must not be cached: orbax's arrays (tensorstore), other hosts and other runs
# write to the same prefixes behind gcsfs's back.
fsspec.config.conf.setdefault('gcs', {}).setdefault('use_listings_cache', False)

# Every file name of a run, named once.
CHECKPOINTS = 'checkpoints'          # orbax steps of the latest states
BEST = 'checkpoints_best'            # the best state by validation top-1
CHECKSUMS = 'checksums.json'         # inside each committed step
HISTORY = 'history.jsonl'            # every scalar written, for the curves
METRICS = 'metrics.json'             # the final summary of training
EVALUATE = 'evaluate.json'           # the summary of --mode=evaluate
EVALUATE_DIR = 'evaluate'            # --mode=evaluate's eval_*/confusion_*/predictions_*
VALIDATION = 'validation.json'       # the validation points, kept across resumes
INIT = 'init.json'                   # where the weights of step 0 came from
CURVES = 'curves.png'
LOCK = '.lock'                       # one run per workdir (tps_jax.locking)


def eval_report(split: str) -> str:
  return f'eval_{split}.json'


def confusion(split: str) -> str:
  return f'confusion_{split}.csv'


def predictions(split: str) -> str:
  return f'predictions_{split}.npz'


PathLike = Union[str, os.PathLike]


def is_url(path: PathLike) -> bool:
  """True for object-store paths (``gs://...``): no flock, no append, no rename."""
  return '://' in os.fspath(path)


def resolve(path: PathLike) -> str:
  """An absolute local path, or the URL unchanged (never ``os.path.abspath`` on a URL)."""
  path = os.fspath(path)
  return path.rstrip('/') if is_url(path) else os.path.abspath(path)


def join(root: PathLike, *names: str) -> str:
  """``root/name/...`` for local paths and URLs alike."""
  return '/'.join([os.fspath(root).rstrip('/'), *names]) if is_url(root) else os.path.join(
      os.fspath(root), *names)


def _p(path: PathLike) -> epath.Path:
  return epath.Path(os.fspath(path))


def exists(path: PathLike) -> bool:
  return _p(path).exists()


def isdir(path: PathLike) -> bool:
  return _p(path).is_dir()


def isfile(path: PathLike) -> bool:
  """A regular file (locally not a device: ``/dev/full`` would read forever)."""
  return _p(path).is_file() if is_url(path) else os.path.isfile(path)


def listdir(path: PathLike) -> List[str]:
  """The names in a directory; [] when it does not exist."""
  p = _p(path)
  return sorted(c.name for c in p.iterdir()) if p.is_dir() else []


def makedirs(path: PathLike) -> None:
  """Creates a local directory; on an object store there are no directories to create."""
  if not is_url(path):
    os.makedirs(path, exist_ok=True)


def read_bytes(path: PathLike) -> bytes:
  return _p(path).read_bytes()


def read_text(path: PathLike) -> str:
  return _p(path).read_text()


def files_under(path: PathLike) -> Iterator[str]:
  """Every file below ``path``, relative to it (``a/b``), in no particular order."""
  root = os.fspath(path).rstrip('/')
  bare = root.split('://', 1)[-1]  # fsspec names what it walks without the scheme
  for parent, _, names in _p(root).walk():
    rel = os.fspath(parent).split('://', 1)[-1][len(bare):].strip('/')
    for name in names:
      yield f'{rel}/{name}' if rel else name


def write_atomic(path: PathLike, data: Union[bytes, str]) -> None:
  """Writes ``data`` so that a reader sees the old file or the new one, never a part.

  Local: a temporary file, then ``os.replace``. Object store: one whole-object PUT (atomic
  there). Errors name ``path``.
  """
  data = data.encode() if isinstance(data, str) else data
  path = os.fspath(path)
  if is_url(path):
    _p(path).write_bytes(data)
    return
  tmp = path + '.tmp'
  try:
    with open(tmp, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except OSError as e:  # name the file (a failed write or flush does not)
    raise OSError(e.errno, e.strerror, path) from e
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def append_text(path: PathLike, text: str) -> None:
  """Appends ``text`` to a local file (object stores have no append: rewrite instead)."""
  try:
    with open(path, 'a') as f:
      f.write(text)
  except OSError as e:
    raise OSError(e.errno, e.strerror, os.fspath(path)) from e


def rename(src: PathLike, dst: PathLike) -> None:
  """Renames a file or directory (on an object store: copy, then delete; not atomic)."""
  _p(src).rename(_p(dst))


def npz_bytes(**arrays) -> bytes:
  """``np.savez`` into memory, for :func:`write_atomic`."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  return buf.getvalue()


def check_storage(path: PathLike, what: str = '--workdir') -> None:
  """Raises a one-line ValueError naming ``path`` and the cause when its object store cannot
  be used (no credentials, unreachable, no such bucket, no permission), before any compile.

  One listing of at most one object under ``path`` (needs only ``storage.objects.list``),
  without retries, so a bad endpoint fails in seconds. Local paths: nothing to check.
  """
  path = os.fspath(path)
  if not path.startswith('gs://'):
    if is_url(path):
      raise ValueError(f'{what}={path}: only local paths and gs:// URLs are supported')
    return
  # pylint: disable=g-import-not-at-top
  from google.api_core import exceptions
  import google.auth.exceptions
  from google.cloud import storage
  import requests
  # pylint: enable=g-import-not-at-top
  bucket, _, prefix = path[len('gs://'):].partition('/')
  client = None
  try:
    client = storage.Client()
    next(iter(client.list_blobs(bucket, prefix=prefix, max_results=1, timeout=30,
                                retry=None)), None)
  except google.auth.exceptions.GoogleAuthError as e:
    cause = f'no Google Cloud credentials ({_first_line(e)}; run `gcloud auth ' \
        'application-default login` or set GOOGLE_APPLICATION_CREDENTIALS)'
  except exceptions.NotFound:
    cause = f'bucket gs://{bucket} does not exist'
  except (exceptions.Forbidden, exceptions.Unauthorized) as e:
    cause = f'no permission to list gs://{bucket} ({_first_line(e)})'
  except (requests.ConnectionError, requests.Timeout) as e:
    errno = re.search(r'\[Errno -?\d+\] [^\'")]+', str(e))
    endpoint = client.api_endpoint if client else 'https://storage.googleapis.com'
    cause = (f'cannot reach the storage endpoint {endpoint} '
             f'({errno.group(0) if errno else type(e).__name__})')
  except exceptions.GoogleAPIError as e:
    cause = _first_line(e)
  else:
    return
  raise ValueError(f'{what}={path}: {cause}')


def _first_line(e: BaseException) -> str:
  text = str(getattr(e, 'message', '') or e).strip().splitlines()
  return (text[0] if text else type(e).__name__)[:200]


def disk_full(error: BaseException, workdir: str) -> Optional[str]:
  """One line (which file, how much space is left) when ``error`` comes from a full disk."""
  if is_url(workdir):  # object stores do not fill up
    return None
  while error is not None:
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or (
        'No space left on device' in str(error)):
      quoted = re.search(r'"(/[^"]+)"', str(error))  # tensorstore names the file in quotes
      where = getattr(error, 'filename', None) or (quoted and quoted.group(1)) or workdir
      where_dir = where if os.path.isdir(where) else os.path.dirname(os.path.abspath(where))
      try:
        free = shutil.disk_usage(where_dir or workdir).free
      except OSError:
        free = shutil.disk_usage(workdir).free if os.path.exists(workdir) else 0
      need = re.search(r'a checkpoint needs [0-9.]+ MiB', str(error))  # checkpoints.check_room
      return (f'disk full: writing {where} failed with {free / 2**20:.1f} MiB free there'
              f'{f" ({need.group(0)})" if need else ""}; free some space and rerun the same '
              'command (it resumes from the last committed checkpoint)')
    error = error.__cause__ or error.__context__
  return None
