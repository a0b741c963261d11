"""Where stores live: the one check of a store (or stores folder) location given by a user.

A location is a local folder (a path, or a ``file://`` URL of this machine) or an object
store URL: ``s3://bucket/prefix/name.zarr`` (S3 and S3-compatible servers, configured by the
standard AWS variables) or a read-only ``http(s)://host/…/name.zarr``. Every entry point
(command line, configuration, environment, Python calls) goes through `store_location`, so
an unsupported scheme is refused before anything is read or written: ``Path("gs://b/x")`` is
the local folder ``gs:/b/x``, and writing there would "succeed" (issue #13).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fewsmap.errors import ConfigError

# A URL scheme (RFC 3986 §3.1) of two or more characters before ':/'; also matches the
# 's3:/bucket' a URL becomes once it has been a Path. Two characters: 'C:/' stays a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):/")
_LOCAL_HOSTS = ("", "localhost")
#: Object-store schemes fewsmap reads; the first ones it also writes.
WRITABLE_SCHEMES = ("s3",)
OBJECT_SCHEMES = (*WRITABLE_SCHEMES, "http", "https")

#: A store location as users give it: a path, or a URL (`store_location` checks it).
Location = str | os.PathLike[str]


def store_location(location: Location, origin: str = "") -> Path | str:
    """Return the local folder, or the object-store URL, that a store location names.

    Parameters
    ----------
    location
        As the user gave it (command line, configuration, environment, Python call).
    origin
        Where it came from (``--store``, ``[stores.x]`` …), to name in the error.

    Returns
    -------
    A `Path` for a local folder; the URL (without a trailing ``/``) for object storage.

    Raises
    ------
    ConfigError
        If it is a URL of another scheme (or a ``file://`` URL of another host), or an
        object-store URL without a bucket/host.
    """
    text = os.fspath(location)
    scheme = _SCHEME.match(text)
    if scheme is None:
        return Path(text)
    name = scheme.group(1).lower()
    parts = urlsplit(text)
    where = f"{origin} " if origin else ""
    if name == "file" and parts.netloc.lower() in _LOCAL_HOSTS:
        return Path(unquote(parts.path))
    if name in OBJECT_SCHEMES and text.startswith(f"{scheme.group(1)}://"):
        if not parts.netloc:
            raise ConfigError(f"{where}{text[:200]!r} names no bucket (host): give "
                              f"{name}://<bucket>/<prefix>/<store>.zarr")
        return f"{name}://{parts.netloc}{parts.path}".rstrip("/")
    raise ConfigError(
        f"{where}{text[:200]!r} is a URL fewsmap cannot reach ({name}://): stores live in "
        "local folders (a path or a file:// URL), in S3 or an S3-compatible server "
        "(s3://bucket/prefix/, configured by the AWS_* variables), or read-only behind "
        "http(s)://")

