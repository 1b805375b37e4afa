"""HTTP failures talking to the archive as one-line :mod:`msus.errors` exceptions.

* :class:`~msus.errors.PacsUnavailable` — refused, timed out, dropped mid-transfer, or HTTP 5xx /
  408 / 429: worth retrying later (the outbox does).
* :class:`~msus.errors.PacsRejected` — the archive answered and said no (bad credentials, not
  found, malformed request or answer).

Messages name the archive host only, never a patient field or a secret.  The HTTP status, when
there is one, is kept as ``http_status`` on the exception.
"""

from __future__ import annotations

import contextlib

import requests

from msus.errors import PacsError, PacsRejected, PacsUnavailable


def http_error(what: str, host: str, response) -> PacsError:
    """The exception for an HTTP error answer (``response`` may be None)."""
    code = getattr(response, "status_code", 0) or 0
    if code in (401, 403):
        e = PacsRejected(f"{what}: the archive at {host} refused the credentials (HTTP {code})")
    elif code == 404:
        e = PacsRejected(f"{what}: not found in the archive at {host} (HTTP 404)")
    elif code in (408, 429) or code >= 500:
        e = PacsUnavailable(f"{what}: the archive at {host} answered HTTP {code}")
    else:
        e = PacsRejected(f"{what}: the archive at {host} answered HTTP {code}")
    e.http_status = code
    return e


@contextlib.contextmanager
def archive_errors(config, what: str):
    """Turn what :mod:`requests` (and a malformed answer) raises inside into a :class:`PacsError`.

    ``config`` is the :class:`msus.pacs.config.PacsConfig` (its host and timeout name the failure).
    """
    host = config.host
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise PacsRejected(
            f"{what}: the TLS certificate of {host} could not be verified "
            "(set MSUS_PACS_VERIFY_TLS to a CA bundle path)"
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise PacsUnavailable(f"{what}: the archive at {host} did not answer within {config.timeout_s:g} s") from exc
    except requests.exceptions.HTTPError as exc:
        raise http_error(what, host, exc.response) from exc
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
        raise PacsUnavailable(f"{what}: the transfer from {host} was interrupted") from exc
    except requests.exceptions.ConnectionError as exc:
        raise PacsUnavailable(f"{what}: cannot reach the archive at {host} (connection refused or dropped)") from exc
    except requests.exceptions.RequestException as exc:
        raise PacsUnavailable(f"{what}: request to {host} failed ({type(exc).__name__})") from exc
    except (ValueError, KeyError, IndexError) as exc:
        raise PacsRejected(f"{what}: unexpected answer from the archive at {host} ({exc})") from exc
