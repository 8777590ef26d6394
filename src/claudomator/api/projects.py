"""Project routes: list, get, create, replace, delete (those from the config file are read-only)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from claudomator.models import Project
from claudomator.service import Service


class ProjectView(Project):
    """A project and where it is defined: ``config`` (the config file) or ``api``."""

    source: str


def _view(project: Project, source: str) -> ProjectView:
    return ProjectView(**project.model_dump(), source=source)


class ProjectList(BaseModel):
    projects: list[ProjectView]


def project_routes(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/projects", tags=["projects"])

    @router.get("", response_model=ProjectList)
    def list_projects() -> ProjectList:
        """Every project, from the config file and from the API."""
        return ProjectList(projects=[_view(p, s) for p, s in service.projects()])

    @router.get("/{name}", response_model=ProjectView)
    def get_project(name: str) -> ProjectView:
        return _view(*service.project(name))

    @router.post("", response_model=ProjectView, status_code=201)
    def create_project(project: Project) -> ProjectView:
        """Add a project (``dir`` absolute and existing); 409 if the name is taken."""
        return _view(service.save_project(project, create=True), "api")

    @router.put("/{name}", response_model=ProjectView)
    def replace_project(name: str, project: Project) -> ProjectView:
        """Replace a project added through the API (the name in the path wins)."""
        named = project.model_copy(update={"name": name})
        return _view(service.save_project(named, create=False), "api")

    @router.delete("/{name}", status_code=204)
    def delete_project(name: str) -> None:
        """Remove a project added through the API (its tasks stay)."""
        service.delete_project(name)

    return router
