"""Path parameters the HTTP services share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

from schemas.events import PERSON_ID_PATTERN
from schemas.text import shown_safely

#: a person id in a route's path: the rules of ``schemas.events.PersonId`` (no "|", no
#: control, invisible or look-alike characters), checked before the route runs (422)
PersonPath = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=PERSON_ID_PATTERN),
    AfterValidator(shown_safely),
]
