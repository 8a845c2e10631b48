"""How many speakers a job asks for, read one way by everyone who must know.

The gateway refuses an impossible request with it (a 422 naming the field), the
splitter asks it whether two speakers are allowed (the channels route), and the
speakers service hands it to the clustering. One reading keeps them from disagreeing,
as they did when each read the fields its own way: a count the gateway accepted under
a raised VTX_MAX_SPEAKERS was refused by the speakers service's fixed bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.config import Settings

OFF, AUTO = "off", "auto"
DEFAULT_LIMIT: int = Settings.model_fields["max_speakers"].default


class SpeakerCountError(ValueError):
    """An impossible request; `field` is the form field to change."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def read_speakers(value: str) -> str | None:
    """The `speakers` field as a job stores it: None (off), "auto", or the digits of a
    count (its range is checked by `SpeakerCount`, which knows the server's limit)."""
    if value == OFF:
        return None
    if value == AUTO:
        return value
    if re.fullmatch(r"[0-9]{1,3}", value):
        return str(int(value))
    shown = value[:16].encode("ascii", "backslashreplace").decode("ascii")
    raise SpeakerCountError(
        f"'{shown}' is not off, auto or a number of speakers such as 2", "speakers"
    )


@dataclass(frozen=True)
class SpeakerCount:
    """An `exact` count, or "auto" bounded by `min`/`max`, all within `limit`
    (VTX_MAX_SPEAKERS). Built only if possible: SpeakerCountError says what to send."""

    exact: int | None = None
    min: int | None = None
    max: int | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        for field, value in (("min_speakers", self.min), ("max_speakers", self.max)):
            if value is not None and not 1 <= value <= self.limit:
                raise SpeakerCountError(
                    f"{field}: {value} is not from 1 to this server's VTX_MAX_SPEAKERS "
                    f"({self.limit}).",
                    field,
                )
        if self.exact is None:
            if self.min is not None and self.max is not None and self.min > self.max:
                raise SpeakerCountError(
                    f"min_speakers ({self.min}) is more than max_speakers ({self.max}).",
                    "min_speakers",
                )
            return
        if not 1 <= self.exact <= self.limit:
            raise SpeakerCountError(
                f"speakers: {self.exact} is not from 1 to {self.limit} (VTX_MAX_SPEAKERS); "
                "send a count in that range, or auto.",
                "speakers",
            )
        if not self.min_bound <= self.exact <= self.max_bound:
            raise SpeakerCountError(
                f"speakers={self.exact} is outside min_speakers={self.min_bound} .. "
                f"max_speakers={self.max_bound}; send a count within them, or speakers=auto "
                "with the bounds alone.",
                "speakers",
            )

    @classmethod
    def of_request(
        cls, speakers: str | None, low: int | None, high: int | None, limit: int
    ) -> SpeakerCount | None:
        """The count a request's stored fields ask for; None when speakers are off (and
        then bounds are refused: they would silently do nothing)."""
        if speakers is None:
            if low is not None or high is not None:
                field = "min_speakers" if low is not None else "max_speakers"
                raise SpeakerCountError(
                    f"{field} is taken only with speakers=auto (or a count); send "
                    "speakers=auto with it, or leave it out.",
                    field,
                )
            return None
        return cls.parse(speakers, low, high, limit)

    @classmethod
    def parse(cls, speakers: str, low: int | None, high: int | None, limit: int) -> SpeakerCount:
        """`speakers` as a job stores it when it asks for speakers: "auto" or digits."""
        if speakers == AUTO:
            return cls(None, low, high, limit)
        if not speakers.isdigit():
            raise SpeakerCountError(f"'{speakers[:16]}' is not auto or a count", "speakers")
        return cls(int(speakers), low, high, limit)

    @property
    def min_bound(self) -> int:
        return self.min or 1

    @property
    def max_bound(self) -> int:
        return self.max or self.limit

    @property
    def lower(self) -> int:
        """The fewest speakers a result may have."""
        return self.exact or self.min_bound

    @property
    def upper(self) -> int:
        """The most speakers a result may have."""
        return self.exact or self.max_bound

    def allows(self, speakers: int) -> bool:
        return self.lower <= speakers <= self.upper
