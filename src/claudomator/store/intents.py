"""The delivery-intent record: what an execution was about to deliver, and from where."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from claudomator.models import utcnow


@dataclass(frozen=True)
class DeliveryIntent:
    """Written before an execution's work is pushed or kept as a branch.

    ``head`` is the commit to deliver once the work is collected ("" before: recovery then
    reads the sandbox's HEAD, and believes it only if the target has it on top of
    ``base_commit``).
    """

    execution_id: str
    task_id: str
    project_dir: str
    sandbox_dir: str
    branch: str  # the project's branch the sandbox was made from ("HEAD" if detached)
    base_commit: str
    head: str = ""
    created_at: datetime = field(default_factory=utcnow)
