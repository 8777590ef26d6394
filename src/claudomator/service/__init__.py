"""The facade every entry point calls: submit, cancel, look up, list.

The CLI, the HTTP API and webhooks go through :class:`Service`; none of them touches the store,
the pool or an execution's log folder directly. Submitting only writes to the store; a pool (in
this process or another) claims the work from there. The parts :class:`Service` is made of are
listed in :mod:`claudomator.service.facade`.
"""

from claudomator.service.core import ServiceCore
from claudomator.service.facade import Service
from claudomator.service.lifecycle import EDITABLE_FIELDS
from claudomator.service.submission import Duplicate, SubtaskRefusal

__all__ = ["EDITABLE_FIELDS", "Duplicate", "Service", "ServiceCore", "SubtaskRefusal"]
