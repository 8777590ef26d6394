"""Story routes: a named group of tasks toward one goal, with its progress."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from claudomator.models import Story, TaskState, check_text
from claudomator.service import Service


class StoryBody(BaseModel):
    """What a new story needs."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20000)

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


class StoryChanges(BaseModel):
    """What may change in a story (fields left out stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20000)

    @field_validator("*")
    @classmethod
    def _text(cls, value: object) -> object:
        return check_text(value)


class StoryView(BaseModel):
    """A story and how far its tasks have come."""

    story: Story
    tasks: dict[str, int]  # per state
    total: int
    completed: int
    progress: float  # completed / total (0 without tasks)


class StoryList(BaseModel):
    stories: list[StoryView]


def _view(story: Story, counts: dict[str, int]) -> StoryView:
    total = sum(counts.values())
    completed = counts.get(TaskState.COMPLETED.value, 0)
    return StoryView(
        story=story,
        tasks=counts,
        total=total,
        completed=completed,
        progress=completed / total if total else 0.0,
    )


def story_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/stories", tags=["stories"])

    @router.get("", response_model=StoryList)
    def list_stories() -> StoryList:
        """Every story, newest first, with progress."""
        return StoryList(stories=[_view(s, c) for s, c in service.stories()])

    @router.post("", response_model=StoryView, status_code=201)
    def create_story(body: StoryBody) -> StoryView:
        """A new story; give tasks its id as ``story_id``."""
        story = service.create_story(Story(name=body.name, description=body.description))
        return _view(story, {})

    @router.get("/{story_id}", response_model=StoryView)
    def get_story(story_id: str) -> StoryView:
        return _view(*service.story(story_id))

    @router.patch("/{story_id}", response_model=StoryView)
    def update_story(story_id: str, body: StoryChanges) -> StoryView:
        """Rename a story or change its description."""
        return _view(*service.update_story(story_id, name=body.name, description=body.description))

    @router.delete("/{story_id}", status_code=204)
    def delete_story(story_id: str) -> None:
        """Delete a story; its tasks stay, without a story."""
        service.delete_story(story_id)

    return router
