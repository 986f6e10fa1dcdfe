"""Private log files: created 0640, their directories created 0750 (PCI DSS 10.3.2: audit
logs readable by those who need them only).

A file is created with its mode already set (concurrent-log-handler creates it under a
temporary name with the mode, then links it in place), so no reader ever sees it wider;
its backups are created the same way. A directory the layer creates (LOG_BASE_DIR and any
missing parent) gets the directory mode; an existing one, `/tmp` say, is never changed.
Both modes are settings (`OBSERVABILITY['LOG_FILE_MODE']`, `['LOG_DIR_MODE']`): a log
shipper's group reads the files with the defaults once it owns the directory's group
(README, "Log files").
"""

from __future__ import annotations

import os

#: The defaults: owner reads and writes, the group reads, others nothing.
FILE_MODE = 0o640
DIR_MODE = 0o750


def make_dirs(directory: str, mode: int = DIR_MODE) -> None:
    """Create `directory` and its missing parents with exactly `mode` (not the umask's);
    leave every existing one as it is."""
    missing: list[str] = []
    path = os.path.abspath(directory)
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, mode)
        except FileExistsError:  # another process made it meanwhile: theirs, as it is
            continue
        os.chmod(path, mode)  # mkdir's mode is narrowed by the umask
