"""What can go wrong with a request, said in the gateway's own words, without HTTP.

Domain code (uploads, options, intake, fetch, quotas, auth) raises these; only the edge
(services.gateway.errors, installed by create_app) knows which status, headers and body
shape each kind becomes, so a refusal reads the same whichever module raised it.
"""

from __future__ import annotations

import errno

# A full disk or quota: the server's fault, not the client's, whatever it sent.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class Problem(Exception):
    """A request refused (or failed) with a message a person can act on.

    `param` names the form field or parameter at fault, when one is.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class BadRequest(Problem):
    """The request cannot be worked on as sent."""


class EmptyFile(BadRequest):
    """The file holds no bytes."""


class UnreadableBody(BadRequest):
    """The body is not the multipart form it says it is."""


class CannotTranslate(BadRequest):
    """Translation asked of a model that knows only English."""


class JobFailed(BadRequest):
    """The job ran and failed; its reason is for a person to read."""


class Unauthorized(Problem):
    """No valid API key (or media token) where one is required."""


class NotFound(Problem):
    """No such job, or its media is no longer kept."""


class NotReady(Problem):
    """The job exists but is not in a state that has what was asked."""


class TooLarge(Problem):
    """Larger or longer than a limit, or past a storage or audio budget."""


class NotMedia(Problem):
    """Not audio or video in a supported format, or not sent as a form."""


class InvalidField(Problem):
    """A missing, unknown or invalid form field or value."""


class QuotaExceeded(Problem):
    """Too much at once for this caller; it may try again after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class TimedOut(Problem):
    """The transcript was not ready within the wait; the job goes on."""


class Unavailable(Problem):
    """A part of the suite the request needs is not running (e.g. no speakers worker).

    Not a fault of this server's code: it is answered 503 and not logged as an error.
    With `retry_after_s` it is likely to pass soon; without, someone has to start it."""

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServerFault(Problem):
    """Something on the server's side is broken; the client can do nothing about it."""


class StorageFull(ServerFault):
    """The server's disk (spool or store) has no room left."""

    def __init__(self) -> None:
        super().__init__("The server has no storage space left; try again later.")


def is_no_space(exc: BaseException) -> bool:
    """True for an OSError that says the disk (or a disk quota) is full."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE
