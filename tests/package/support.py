"""The files an ``edgectl init`` configuration names, made as an installer would."""

from __future__ import annotations

import os
from pathlib import Path

from edgectl.commands.init import SECRET_FILES


def make_secrets(directory: Path) -> Path:
    """The CA, the MQTT user name and password and a 32-byte command key, mode 0640."""
    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        "ca_file": "-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n",
        "username_file": "hz-0001\n",
        "password_file": "correct horse battery staple\n",
        "command_key_file": os.urandom(32).hex() + "\n",
    }
    for key, name in SECRET_FILES.items():
        path = directory / name
        path.write_text(contents[key])
        path.chmod(0o640)
    return directory
