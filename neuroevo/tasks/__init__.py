"""Built-in tasks."""

from neuroevo.tasks.base import Task
from neuroevo.tasks.logbits import logbits

__all__ = ["Task", "logbits"]
