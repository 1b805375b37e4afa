"""A throw-away Orthanc DICOMweb server for tests and benchmarks.

:class:`OrthancServer` writes its own JSON configuration (temporary storage and index folders,
an HTTP port on 127.0.0.1, no DICOM listener, remote access off), starts ``Orthanc`` with the
DICOMweb plugin and waits (bounded) for ``/system``.  It can be stopped and started again on the
same port with the same storage, which the outage tests use.

Needs the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (see ``scripts/system-deps.sh``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

#: Where Debian's ``orthanc-dicomweb`` puts the plugin (``dpkg -L orthanc-dicomweb``).
PLUGIN_GLOBS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so*",
    "/usr/lib/*/orthanc/libOrthancDicomWeb.so*",
    "/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so",
)
START_TIMEOUT_S = 20.0


def orthanc_binary() -> str | None:
    """Path of the ``Orthanc`` executable (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("Orthanc")
    if found:
        return found
    for cand in ("/usr/sbin/Orthanc", "/usr/local/sbin/Orthanc", "/usr/bin/Orthanc"):
        if os.access(cand, os.X_OK):
            return cand
    return None


def dicomweb_plugin() -> str | None:
    """Path of the DICOMweb plugin shared library, or None."""
    for pattern in PLUGIN_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancServer:
    """One Orthanc process with its own storage under ``workdir``.

    Parameters
    ----------
    workdir
        Folder for the configuration, storage, index and log (created).
    users
        ``{"name": "password"}`` enables HTTP basic authentication.
    port
        HTTP port on 127.0.0.1 (a free one when None).
    """

    def __init__(self, workdir: Path, users: dict[str, str] | None = None, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users or {})
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.binary = orthanc_binary()
        self.plugin = dicomweb_plugin()
        if self.binary is None or self.plugin is None:
            raise RuntimeError("Orthanc or its DICOMweb plugin is not installed")
        self.config_path = self.workdir / "orthanc.json"
        self._write_config()

    # ---- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str] | None:
        if not self.users:
            return None
        return next(iter(self.users.items()))

    def _write_config(self) -> None:
        cfg = {
            "Name": "msus-test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "DicomPort": 0,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "HttpServerEnabled": True,
            "HttpThreadsCount": 8,
            "HttpTimeout": 10,
            "KeepAlive": True,
            "ConcurrentJobs": 1,
            "SaveJobs": False,
            "StorageCompression": False,
            "StorageAccessOnFind": "Always",
            "OverwriteInstances": False,
            "Plugins": [self.plugin],
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": False,
                "Ssl": False,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            },
        }
        self.config_path.write_text(json.dumps(cfg, indent=2))

    # ---- life cycle -----------------------------------------------------------------------
    def start(self, timeout_s: float = START_TIMEOUT_S) -> "OrthancServer":
        if self.running:
            return self
        log = open(self.workdir / "orthanc.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--no-jobs", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                r = requests.get(f"{self.url}/system", auth=self.auth, timeout=1.0)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout_s:.0f} s: {self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False, timeout_s: float = 10.0) -> None:
        """Stop the server (SIGTERM, or SIGKILL when ``kill``); storage is kept."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        self.proc = None

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = (self.workdir / "orthanc.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    # ---- REST helpers (Orthanc's own API, for setting up and checking tests) ---------------
    def upload(self, path: Path | str) -> dict:
        """Store one DICOM file through Orthanc's REST ``/instances``."""
        data = Path(path).read_bytes()
        r = requests.post(f"{self.url}/instances", data=data, auth=self.auth, timeout=30)
        r.raise_for_status()
        return r.json()

    def instance_count(self) -> int:
        r = requests.get(f"{self.url}/statistics", auth=self.auth, timeout=5)
        r.raise_for_status()
        return int(r.json()["CountInstances"])

    def find_instance(self, sop_instance_uid: str) -> list[str]:
        r = requests.post(
            f"{self.url}/tools/lookup", data=sop_instance_uid, auth=self.auth, timeout=5
        )
        r.raise_for_status()
        return [x["ID"] for x in r.json() if x.get("Type") == "Instance"]

    def __enter__(self) -> "OrthancServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1, made by openssl (valid one day)."""
    folder = Path(folder)
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=60,
    )
    return crt, key


class TlsQidoServer:
    """An HTTPS server on 127.0.0.1 answering every GET with an empty QIDO-RS result.

    (Debian's Orthanc 1.10 crashes on its first HTTPS request, so TLS checks use this.)
    """

    def __init__(self, cert: Path, key: str | Path):
        import http.server
        import ssl

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dicom-web"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- network faults ---------------------------------------------------------------------------
class _LoopbackListener:
    """A TCP listener on 127.0.0.1 (free port) whose accept loop hands each connection to
    :meth:`_on_connection` until :meth:`close`."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._on_connection(conn)

    def _on_connection(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class SilentServer(_LoopbackListener):
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung archive)."""

    def __init__(self):
        self._conns: list[socket.socket] = []
        super().__init__()

    def _on_connection(self, conn: socket.socket) -> None:
        self._conns.append(conn)

    def close(self) -> None:
        super().close()
        for c in self._conns:
            c.close()


class CuttingProxy(_LoopbackListener):
    """A TCP proxy to ``upstream_port`` that drops connections mid-transfer.

    ``cut_response_after`` bytes of a response are forwarded, then both sides are closed (0: the
    request reaches the server whole but no byte of its answer comes back); ``None`` forwards
    everything.  With ``methods``, only responses to requests with those methods are cut: the
    proxy watches each connection's requests (HTTP/1.1 without pipelining: once a client has sent
    a POST, the next response bytes answer it), so pooled keep-alive connections are handled.
    """

    def __init__(self, upstream_port: int, cut_response_after: int | None = 0, methods: tuple[str, ...] | None = None):
        self.upstream_port = upstream_port
        self.cut_response_after = cut_response_after
        self.methods = tuple(m.encode() + b" " for m in methods) if methods else None
        super().__init__()

    def _on_connection(self, client: socket.socket) -> None:
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        armed = threading.Event()  # a request to cut has been sent on this connection
        if self.methods is None:
            armed.set()
        threading.Thread(target=self._requests, args=(client, up, armed), daemon=True).start()
        threading.Thread(target=self._responses, args=(up, client, armed), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket, armed) -> None:
        try:
            src.settimeout(15)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.methods is not None and data.startswith(self.methods):
                    armed.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def _responses(self, src: socket.socket, dst: socket.socket, armed) -> None:
        limit = self.cut_response_after
        sent = 0
        try:
            src.settimeout(15)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and armed.is_set():
                    if sent + len(data) > limit:
                        if limit > sent:
                            dst.sendall(data[: limit - sent])
                        break
                    sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


# ---- test objects -----------------------------------------------------------------------------
def make_sr(reference, text: str = "msus test finding"):
    """A small Comprehensive SR (highdicom) in the study of ``reference`` (a pydicom Dataset)."""
    import warnings

    import highdicom as hd
    from pydicom.sr.codedict import codes

    root = hd.sr.ContainerContentItem(name=codes.DCM.ImagingMeasurementReport, template_id="1500")
    root.ContentSequence = hd.sr.ContentSequence([
        hd.sr.TextContentItem(
            name=hd.sr.CodedConcept("121071", "DCM", "Finding"),
            value=text,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd patient names in public test files
        return hd.sr.ComprehensiveSR(
            evidence=[reference], content=root, series_instance_uid=hd.UID(), series_number=900,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="msus tests",
        )
