"""Simulated devices: state in a JSON file, replaced atomically on every change, so a
crash or a restart never loses or half-writes it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from gamgin_common.paths import data_dir
from gamgin_devices.backends import BackendError, DeviceStatus, ExternalChange
from gamgin_devices.registry import Registry


class SimulatedBackend:
    name = "simulated"

    def __init__(self, state_file: str | Path = "") -> None:
        self.path = Path(state_file) if state_file else data_dir() / "devices_state.json"
        self.warning = ""  # set when the saved state could not be used

    def start(self, registry: Registry, on_external: ExternalChange) -> dict[str, DeviceStatus]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: DeviceStatus.from_dict(v) for k, v in raw.get("devices", {}).items()}
        except (OSError, ValueError, AttributeError) as exc:
            # keep the broken file for a person to look at; start from defaults
            bad = self.path.with_suffix(".corrupt.json")
            os.replace(self.path, bad)
            self.warning = (f"state file {self.path} unreadable ({exc}); moved to {bad}, "
                            "started from registry defaults")
            return {}

    def apply(self, device_id: str, new: DeviceStatus, change: dict,
              states: Mapping[str, DeviceStatus]) -> None:
        data = {"version": 1, "devices": {k: s.to_dict() for k, s in states.items()}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".devices-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise BackendError(f"cannot write device state to {self.path}: {exc}") from None

    def close(self) -> None:
        pass
