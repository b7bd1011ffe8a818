"""Files a package, a card, the labelled-cell store or the model library name are read,
written, moved or deleted only inside their own folder.

A name from such a file must be relative, without ``..``, and resolve (symlinks
followed) to a path inside the folder; anything else is refused in one line before the
file is touched. A copied or hand-edited ``cells.json`` naming ``../../x`` can then never
make ``remove()`` delete a file elsewhere.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from micro_app.core.errors import MicroAppError, ModelPackageError


def inside(
    root: Path, name: object, what: str, error: type[MicroAppError] = ModelPackageError
) -> Path:
    """``root / name`` when it stays inside ``root``; else ``error`` in one line."""
    if not isinstance(name, str) or not name.strip():
        raise error(f"{what} names no file ({name!r}): the file is malformed")
    for flavour in (PurePosixPath(name), PureWindowsPath(name)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            raise error(
                f"{what} names {name!r}, outside its folder {root}: refused; the file was "
                "edited or copied from elsewhere"
            )
    base = Path(root).resolve()
    path = (base / name).resolve()
    if path != base and base not in path.parents:
        raise error(
            f"{what} names {name!r}, which leads outside {root} (a symbolic link?): refused"
        )
    return base / name


def no_link_out(root: Path, folder: Path, what: str, error: type[MicroAppError]) -> Path:
    """``folder`` (inside ``root``) when it is not a link to somewhere else."""
    base = Path(root).resolve()
    resolved = Path(folder).resolve()
    if Path(folder).is_symlink() or (resolved != base and base not in resolved.parents):
        raise error(f"{what} {folder} links outside {root}: refused; copy the files in instead")
    return Path(folder)
