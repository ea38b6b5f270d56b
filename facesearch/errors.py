"""Errors that the command line turns into a one-line message and exit code 1.

Anything raised as a :class:`FaceSearchError` is a failure of the input or of the stored
state, never a bug: the CLI prints its message without a traceback.
"""


class FaceSearchError(Exception):
    """Base class: a failure of the input or of the state, with a message fit for a user."""


class ImageError(FaceSearchError):
    """An image file that cannot be used (unreadable, truncated, too large, not an image)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(FaceSearchError):
    """A model file that is missing, corrupt, or not the encoder the gallery is bound to."""


class GalleryError(FaceSearchError):
    """A gallery state that forbids the operation (empty, newer schema, bad threshold...)."""


class Busy(GalleryError):
    """The gallery stayed locked by another writer for longer than the caller would wait."""


class InputError(FaceSearchError):
    """A bad argument or input folder (missing, empty, reserved identity name...)."""


class UnknownIdentity(InputError):
    """An identity the gallery does not hold (remove: HTTP 404)."""


class UnknownFace(UnknownIdentity):
    """A face id or group number the gallery does not have (HTTP 404, like a person)."""


class StorageError(FaceSearchError):
    """A write the disk refused (no space left): nothing half-written is kept."""
