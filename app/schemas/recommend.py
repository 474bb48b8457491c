"""The recommend request: steer a search by example samples and by words."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from app.schemas.filters import FilterIn
from app.schemas.fit import ProjectIn
from app.schemas.search import AVOID_DOC, CONTEXT_DESCRIPTION, AvoidWord, Paging, QueryText
from timbre.search.steer import MAX_EXAMPLES

ItemId = Annotated[str, Field(min_length=1, max_length=100)]

# "A positive id or a query" in JSON Schema terms (a null counts as not given), so that the
# schema accepts no body the model refuses for lack of both.
_SOMETHING_WANTED: JsonDict = {
    "anyOf": [
        {"required": ["query"], "properties": {"query": {"type": "string"}}},
        {"required": ["positive"], "properties": {"positive": {"type": "array", "minItems": 1}}},
    ]
}


class RecommendIn(Paging):
    """More like the ``positive`` samples (and the ``query``), less like the ``negative``
    ones (and the ``avoid`` words): at least one positive id or a query; at most
    64 examples (ids, the query and the words together). The example ids are never hits."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_SOMETHING_WANTED)
    positive: list[ItemId] = Field(
        default=[], max_length=MAX_EXAMPLES, description="ids of samples to move towards"
    )
    negative: list[ItemId] = Field(
        default=[], max_length=MAX_EXAMPLES, description="ids of samples to move away from"
    )
    query: QueryText | None = Field(
        default=None,
        description="a description to move towards; its '-word' tokens join avoid",
        examples=["punchy kick -distorted"],
    )
    avoid: list[AvoidWord] | None = Field(
        default=None, max_length=MAX_EXAMPLES, description=AVOID_DOC
    )
    filter: FilterIn | None = None
    context: ProjectIn | None = Field(default=None, description=CONTEXT_DESCRIPTION)

    @model_validator(mode="after")
    def _something_wanted(self) -> RecommendIn:
        if not self.positive and self.query is None:
            raise ValueError("give at least one positive id or a query")
        return self
