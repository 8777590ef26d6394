"""Dispatching: which queued task runs next, where, and what happens when a dispatcher dies.

``base.py`` (the :class:`Dispatcher` protocol the runtime needs), ``select.py`` (pure selection:
dependencies, capacity, agent choice, scope), ``liveness.py`` (worker identity and reconcile),
``local.py`` (:class:`Pool`, the dispatcher running tasks in this process).
"""

from claudomator.dispatch.base import Dispatcher
from claudomator.dispatch.liveness import worker_identity
from claudomator.dispatch.local import Pool

__all__ = ["Dispatcher", "Pool", "worker_identity"]
