"""The exceptions neuroevo raises.

Everything a user can trigger (a bad recipe, a bad genome, a mutation that breaks an invariant)
raises a subclass of :class:`NeuroevoError` with a message that says what is wrong and where.
The command line turns these into one line and exit code 2.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with control characters escaped (a newline, an ANSI escape), so that an error
    message naming a user's key or value stays one harmless line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class NeuroevoError(Exception):
    """Base class of every error caused by the user's input."""


class InvalidGenome(NeuroevoError):
    """A genome breaks one of its invariants; ``invariant`` names which one."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"invalid genome ({invariant}): {detail}")
        self.invariant = invariant
        self.detail = detail


class InvalidSetting(NeuroevoError):
    """A setting outside its range; ``key`` names it as a recipe does (``mixer.mix_lr``), so
    the recipe can say which file or ``--set`` it came from."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key = key


class InvalidSpace(NeuroevoError):
    """A search space whose bounds contradict each other."""


class MutationNotApplicable(NeuroevoError):
    """A mutation cannot apply to this genome (e.g. no skip edge to remove).

    Not a failure: the caller draws another operator.
    """


class MutationError(NeuroevoError):
    """A mutation misbehaved: it raised, returned something else than a genome, or broke an
    invariant. The message names the mutation."""


class UnknownMutation(NeuroevoError):
    """A mutation name that is neither registered nor importable."""
