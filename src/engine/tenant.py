"""A tenant is one environment of one workspace: the unit whose data never meets another's."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import msgspec

Environment = Literal["live", "test"]
_ENV_BYTE = {"live": b"L", "test": b"T"}


class Tenant(msgspec.Struct, frozen=True, dict=True):
    workspace_id: str
    environment: Environment

    @cached_property
    def prefix(self) -> bytes:
        """Leading bytes of every key that belongs to this tenant in the shared databases
        (kept: every write and read of the tenant's data builds keys from it)."""
        return self.workspace_id.encode() + b"\x00" + _ENV_BYTE[self.environment] + b"\x00"

    @classmethod
    def from_prefix(cls, prefix: bytes) -> Tenant:
        workspace, env, _ = prefix.split(b"\x00")
        environment = next(name for name, byte in _ENV_BYTE.items() if byte == env)
        return cls(workspace.decode(), environment)  # type: ignore[arg-type]
