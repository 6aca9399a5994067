"""The public web, as `learn up --demo` sees it: a forward proxy that answers every page itself.

The marketing_pages source GETs each catalog course's and program's own page (learn.mit.edu,
xpro.mit.edu, www.edx.org, ...), on a fixed allow-list of real hosts. Offline, those GETs would
each fail after the client's retries. The demo sets HTTP(S)_PROXY to this server (NO_PROXY for
the local services) and SSL_CERT_FILE to a bundle trusting its own throwaway CA, so an https
request is tunnelled here (CONNECT), TLS is terminated with a certificate made for that host,
and a generated page answers it. Plain-http requests (absolute-form) are answered the same way.

The CA lives only in the demo's data directory and signs only for this process's proxy; nothing
is installed system-wide.
"""

from __future__ import annotations

import datetime as dt
import html
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

# (host, path) -> (status, content type, body)
PageAnswer = tuple[int, str, bytes]
PageMaker = Callable[[str, str], PageAnswer]


def generated_page(host: str, path: str) -> PageAnswer:
    """A marketing-style page for any course/program path: its title from the last path part."""
    parts = [p for p in unquote(path).split("/") if p]
    if not parts:
        return 404, "text/plain", b"not found"
    name = parts[-1]
    kind = "program" if any("program" in p for p in parts) else "course"
    # a slug reads as words; a readable id (course-v1:MITxT+18.03x) is kept as it is
    title = html.escape(name if ":" in name else name.replace("-", " ").replace("_", " "))
    site = html.escape(host)
    body = (
        f"<!doctype html><html><head><title>{title} | {site}</title></head><body>"
        f'<nav><a href="/">{site}</a> <a href="/catalog">Catalog</a></nav>'
        f"<main><h1>{title}</h1>"
        f"<p>This {kind} page is served by <code>learn up --demo</code> in place of {site}.</p>"
        "<h2>What you will learn</h2><ul><li>The core ideas, with worked examples</li>"
        "<li>How to apply them in a project of your own</li></ul>"
        f'<img src="/static/hero.jpg" alt="Learners in a {kind} session">'
        "<h2>Format</h2><p>Online, self-paced, with weekly problem sets.</p></main>"
        "<footer>Massachusetts Institute of Technology</footer></body></html>"
    )
    return 200, "text/html; charset=utf-8", body.encode()


class _CertAuthority:
    """A throwaway CA and per-host leaf certificates (EC P-256: fast to make)."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec, self._oid = (
            x509,
            hashes,
            serialization,
            ec,
            NameOID,
        )
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "learnflow demo CA")])
        now = dt.datetime.now(dt.UTC)
        self._name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / "demo-ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context_for(self, host: str) -> ssl.SSLContext:
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is None:
                ctx = self._contexts[host] = self._make_context(host)
            return ctx

    def _make_context(self, host: str) -> ssl.SSLContext:
        x509, ec, ser = self._x509, self._ec, self._ser
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(self._oid.COMMON_NAME, host)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, self._hashes.SHA256())
        )
        safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in host)
        pem = self.directory / f"site-{safe}.pem"
        pem.write_bytes(
            cert.public_bytes(ser.Encoding.PEM)
            + key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
        return ctx


class DemoWebProxy:
    """Forward proxy on 127.0.0.1 answering every request with `page(host, path)`."""

    def __init__(self, directory: Path, page: PageMaker = generated_page) -> None:
        self.directory = directory
        self.page = page
        self.requests: list[tuple[str, str]] = []  # (host, path) answered, for tests
        self._ca: _CertAuthority | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_bundle(self) -> Path:
        """The system's CAs (certifi) plus the demo CA: real sites stay verifiable."""
        return self.directory / "ca-bundle.pem"

    def start(self) -> DemoWebProxy:
        import certifi

        self._ca = _CertAuthority(self.directory)
        self.ca_bundle.write_bytes(
            Path(certifi.where()).read_bytes() + b"\n" + self._ca.ca_file.read_bytes()
        )
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            tunnel_host: str | None = None

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_CONNECT(self) -> None:
                host = self.path.rsplit(":", 1)[0].strip("[]")
                self.send_response(200, "Connection Established")
                self.end_headers()
                assert proxy._ca is not None
                try:
                    tls = proxy._ca.context_for(host).wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    self.close_connection = True
                    return
                self.connection = tls
                self.rfile = tls.makefile("rb")
                self.wfile = tls.makefile("wb")  # buffered: flushed after each request
                self.tunnel_host = host
                self.close_connection = False
                # serve the tunnelled requests on this connection
                while not self.close_connection:
                    self.handle_one_request()

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                host = (
                    parts.hostname
                    or self.tunnel_host
                    or (self.headers.get("Host") or "").split(":")[0]
                )
                status, content_type, body = proxy.page(host.lower(), parts.path or "/")
                proxy.requests.append((host, parts.path))
                if self.command == "HEAD":
                    body = b""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def env(self) -> dict[str, str]:
        """The environment that sends this process's web requests here (local ones excluded)."""
        no_proxy = "127.0.0.1,localhost,::1"
        return {
            "HTTP_PROXY": self.url,
            "HTTPS_PROXY": self.url,
            "NO_PROXY": no_proxy,
            "http_proxy": self.url,
            "https_proxy": self.url,
            "no_proxy": no_proxy,
            "SSL_CERT_FILE": str(self.ca_bundle),
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DemoWebProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
