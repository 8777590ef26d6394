"""Executions' log files behind one port: :class:`~claudomator.logs.base.LogStore`.

:mod:`claudomator.logs.base` names the files and the port; :mod:`claudomator.logs.local` keeps
them on local disk. The API and the CLI read logs only through a store built by
:meth:`claudomator.service.Service.open` (or given to it).
"""

from claudomator.logs.base import MAX_READ, LogFile, LogStore, UnsafeLogFile
from claudomator.logs.local import LocalLogStore

__all__ = ["MAX_READ", "LocalLogStore", "LogFile", "LogStore", "UnsafeLogFile"]
