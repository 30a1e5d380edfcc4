"""Containers that many document formats share: ZIP packages (OOXML, OpenDocument, EPUB, CBZ) and OLE2 compound
files (legacy Office, and password-protected OOXML, which Office wraps in an encrypted OLE2 container).

The kind modules use these to recognise their format from the bytes (``zip_member_names``, ``zip_mimetype``),
to tell "password-protected" from "legacy binary" (``ole_is_encrypted_package``, ``odf_is_encrypted``) and to read package members
with a bound on their unpacked size, so a ZIP bomb fails as ``too_large`` instead of filling memory.
"""

from __future__ import annotations

import io
import zipfile

__all__ = [
    "OLE2",
    "ZIP",
    "MemberTooLarge",
    "ole_is_encrypted_package",
    "odf_is_encrypted",
    "zip_member_names",
    "zip_mimetype",
    "read_member",
]

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP = b"PK\x03\x04"
# No single XML part of a real document unpacks to more than this; a bomb does.
MAX_MEMBER_BYTES = 256 * 1024**2


class MemberTooLarge(ValueError):
    """A package member unpacks to more than the limit (a ZIP bomb or an absurd document)."""


def ole_is_encrypted_package(data: bytes) -> bool:
    """An OLE2 file holding an encrypted OOXML package (its directory names the EncryptionInfo stream)."""
    return data.startswith(OLE2) and "EncryptionInfo".encode("utf-16-le") in data[:1 << 20] + data[-(1 << 20):]


def odf_is_encrypted(zf: zipfile.ZipFile) -> bool:
    """An OpenDocument package whose members are encrypted (its manifest carries encryption data)."""
    try:
        manifest = read_member(zf, "META-INF/manifest.xml", 16 * 1024**2)
    except KeyError:
        return False
    return b"encryption-data" in manifest


def zip_member_names(data: bytes) -> set[str]:
    if not data.startswith(ZIP):
        return set()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return set()


def zip_mimetype(data: bytes) -> str:
    """The ``mimetype`` member that OpenDocument and EPUB packages start with, or ""."""
    if not data.startswith(ZIP):
        return ""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.read("mimetype")[:200].decode("ascii", "replace").strip()
    except (KeyError, zipfile.BadZipFile, ValueError, OSError):
        return ""


def read_member(zf: zipfile.ZipFile, name: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """One member's bytes, refusing members that say (or turn out) to unpack beyond ``limit``."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise MemberTooLarge(f"{name} unpacks to {info.file_size} bytes")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise MemberTooLarge(f"{name} unpacks to more than {limit} bytes")
    return data
