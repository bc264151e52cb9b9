"""Feed routes: read a person's feed, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from services.notifier.store import FeedStore

router = APIRouter()


class Feed(BaseModel):
    person_id: str
    items: list[dict[str, Any]]


@router.get(
    "/v1/people/{person_id}/feed", response_model=Feed, summary="A person's feed, newest first"
)
async def get_feed(
    request: Request,
    person_id: Annotated[str, Path(min_length=1, max_length=256)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Feed:
    store: FeedStore = request.app.state.store
    return Feed(person_id=person_id, items=await store.feed(person_id, limit=limit))


@router.get("/healthz", summary="Liveness and Redis connectivity")
async def healthz(request: Request) -> dict[str, Any]:
    ok = bool(await request.app.state.redis.ping())
    return {"status": "ok" if ok else "degraded", "redis": ok}
