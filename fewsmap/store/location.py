"""Where stores live: the one check of a store (or stores folder) location given by a user.

Stores are Zarr folders on the local file system; a ``file://`` URL names one too. Any other
URL (``s3://``, ``gs://``, ``az://``, ``http(s)://`` …) is refused here, before anything is
read or written: ``Path("s3://bucket/x.zarr")`` is the local folder ``s3:/bucket/x.zarr``,
so ``fewsmap ingest --store s3://…`` used to write a folder named ``s3:`` and exit 0
(issue #13). Object storage comes with issue #14, which extends `store_location` to hand
back a backend for the schemes it supports; every entry point already goes through it.
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


def store_location(location: str | os.PathLike[str], origin: str = "") -> Path:
    """Return the local folder a store location names: a path or a ``file://`` URL.

    Parameters
    ----------
    location
        As the user gave it (command line, configuration, environment, Python call).
    origin
        Where it came from (``--store``, ``[stores.x]`` …), to name in the error.

    Raises
    ------
    ConfigError
        If it is a URL of another scheme (or a ``file://`` URL of another host): fewsmap
        cannot serve stores there.
    """
    text = os.fspath(location)
    scheme = _SCHEME.match(text)
    if scheme is None:
        return Path(text)
    name = scheme.group(1).lower()
    parts = urlsplit(text)
    if name == "file" and parts.netloc.lower() in _LOCAL_HOSTS:
        return Path(unquote(parts.path))
    where = f"{origin} " if origin else ""
    raise ConfigError(
        f"{where}{text[:200]!r} is a URL ({name}://): fewsmap reads and writes stores in local "
        "folders only (object storage is not supported yet); give a folder path (or a "
        "file:// URL of this machine), e.g. a bucket mounted with s3fs or gcsfuse")
