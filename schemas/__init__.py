"""Messages that cross Kafka or HTTP: frozen pydantic v2 models and module-level adapters."""

from schemas.events import INTERACTION_KINDS, Interaction, InteractionKind, pair_key
from schemas.suggestions import Suggestion

__all__ = ["INTERACTION_KINDS", "Interaction", "InteractionKind", "Suggestion", "pair_key"]
