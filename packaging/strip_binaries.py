"""Strip symbol tables from the bundle's Linux shared libraries, keeping only copies that still load.

PyInstaller's own ``strip=True`` runs ``strip`` on every binary, which breaks libraries rewritten by patchelf
(auditwheel's ``numpy.libs``/``scipy.libs`` OpenBLAS: "ELF load command address/offset not page-aligned" at
import). Here each library is stripped into a cache (``--strip-unneeded``: the dynamic symbol table that linking
needs stays), and the stripped copy is used only if its loadable segments are still page-consistent (the check
the dynamic loader makes); otherwise, and for everything in auditwheel's ``*.libs`` folders, the original is kept.
Used by ``desktop_search.spec`` on Linux; saves ~150 MB, most of it from torch's libtorch_cpu.so.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

PT_LOAD = 1


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def load_segments_aligned(path: Path) -> bool:
    """True if every PT_LOAD segment has ``p_offset ≡ p_vaddr (mod p_align)``, as ld.so requires."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            return False
        is64, little = ident[4] == 2, ident[5] == 1
        end = "<" if little else ">"
        if is64:
            f.seek(32)
            (phoff,) = struct.unpack(end + "Q", f.read(8))
            f.seek(54)
            phentsize, phnum = struct.unpack(end + "HH", f.read(4))
            fmt = end + "IIQQQQQQ"  # type, flags, offset, vaddr, paddr, filesz, memsz, align
        else:
            f.seek(28)
            (phoff,) = struct.unpack(end + "I", f.read(4))
            f.seek(42)
            phentsize, phnum = struct.unpack(end + "HH", f.read(4))
            fmt = end + "IIIIIIII"  # type, offset, vaddr, paddr, filesz, memsz, flags, align
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            fields = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
            if is64:
                p_type, _flags, offset, vaddr, _paddr, _filesz, _memsz, align = fields
            else:
                p_type, offset, vaddr, _paddr, _filesz, _memsz, _flags, align = fields
            if p_type == PT_LOAD and align > 1 and (offset - vaddr) % align:
                return False
    return True


def _skip(dest: str) -> bool:
    # auditwheel-repaired wheels keep their vendored libraries in "<package>.libs/"; patchelf rewrote them.
    return any(part.endswith(".libs") for part in Path(dest).parts[:-1])


def stripped_toc(binaries: list, cache_dir: Path, strip: str = "strip") -> tuple[list, dict]:
    """``binaries`` (PyInstaller TOC: dest, src, typecode) with stripped copies where that is safe."""
    if shutil.which(strip) is None:
        return list(binaries), {"stripped": 0, "kept": len(binaries), "saved_bytes": 0, "note": "no strip tool"}
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out, stats = [], {"stripped": 0, "kept": 0, "saved_bytes": 0}
    for dest, src, typecode in binaries:
        src_path = Path(src)
        if _skip(dest) or src_path.is_symlink() or not is_elf(src_path):
            out.append((dest, src, typecode))
            stats["kept"] += 1
            continue
        st = src_path.stat()
        key = hashlib.sha256(f"{src_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        target = cache_dir / key / src_path.name
        rejected = target.with_suffix(target.suffix + ".rejected")
        if not target.is_file() and not rejected.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".tmp")
            shutil.copy2(src_path, tmp)
            ok = subprocess.run([strip, "--strip-unneeded", str(tmp)], capture_output=True).returncode == 0
            if ok and load_segments_aligned(tmp):
                tmp.replace(target)
            else:
                tmp.unlink(missing_ok=True)
                rejected.touch()
        if target.is_file() and target.stat().st_size < st.st_size:
            out.append((dest, str(target), typecode))
            stats["stripped"] += 1
            stats["saved_bytes"] += st.st_size - target.stat().st_size
        else:
            out.append((dest, src, typecode))
            stats["kept"] += 1
    return out, stats
