"""One tree of engine errors; the HTTP layer maps each class to a status code in one place."""

from __future__ import annotations


class SignalpostError(Exception):
    """Root of every error the engine raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(SignalpostError):
    """The caller sent something the engine refuses; nothing was stored."""

    code = "validation_error"


class MalformedJSON(InvalidInput):
    code = "invalid_json"


class BatchTooLarge(InvalidInput):
    code = "batch_too_large"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class AuthError(SignalpostError):
    pass


class InvalidApiKey(AuthError):
    code = "invalid_api_key"


class Forbidden(AuthError):
    code = "forbidden"


class NotFound(SignalpostError):
    code = "not_found"


class StorageError(SignalpostError):
    code = "storage_error"


class StorageFull(StorageError):
    """The store reached its size limit or the disk is full; the write was rolled back."""

    code = "storage_full"


class WritesStopped(StorageError):
    """A commit could not be made durable: the store refuses writes until the server restarts
    (`write_fault.py`); nothing of the failed write was acknowledged."""

    code = "storage_unavailable"


class EngineClosed(StorageError):
    code = "engine_closed"
