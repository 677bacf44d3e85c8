"""A table of named parts (the encoders, the planners) that each part's own module fills as it is imported.

The built-in parts' modules are imported on the first lookup, not at import, so reading a name stays cheap
(no torch); their order in `builtin_modules` is the order their names are listed in, whatever the import
order, then the parts registered from elsewhere in registration order.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar


class Part(Protocol):
    """What a registered part has: its name, and the function that builds it (whose module orders it)."""

    @property
    def name(self) -> str: ...

    @property
    def build(self) -> Any: ...


P = TypeVar("P", bound=Part)


class Registry(Generic[P]):
    """Parts of one `kind` by name; `builtin_modules` register wmplan's own; `unknown_hint` ends the message
    for an unknown name (where the name was given)."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...], unknown_hint: str = ""):
        self.kind, self.builtin_modules, self.unknown_hint = kind, builtin_modules, unknown_hint
        self._parts: dict[str, P] = {}
        self._loaded = False

    def load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: a module that looks a part up while it is imported must not import them again
        try:
            for module in self.builtin_modules:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise

    def add(self, part: P) -> P:
        """Add a part checked by its kind's own rules; a ValueError names a name already taken."""
        if not part.name or part.name in self._parts:
            article = "an" if self.kind[0] in "aeiou" else "a"
            raise ValueError(
                f"{article} {self.kind} named {part.name!r} is already registered (or the name is empty); choose another"
            )
        self._parts[part.name] = part
        return part

    def remove(self, name: str) -> None:
        """Remove the part `name` (a KeyError if none is registered under it)."""
        del self._parts[name]

    def _order(self, part: P) -> int:
        module = getattr(part.build, "__module__", None)
        return self.builtin_modules.index(module) if module in self.builtin_modules else len(self.builtin_modules)

    def names(self) -> tuple[str, ...]:
        """Every registered part: wmplan's own in the order of builtin_modules, then the others as registered."""
        self.load_builtins()
        return tuple(p.name for p in sorted(self._parts.values(), key=self._order))  # stable: registration order

    def get(self, name: str) -> P:
        """The part `name`; a ValueError lists the names there are."""
        self.load_builtins()
        if name not in self._parts:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}{self.unknown_hint}"
            )
        return self._parts[name]

    def find(self, name: str) -> P | None:
        """The part `name`, or None where none is registered under it."""
        self.load_builtins()
        return self._parts.get(name)

    def registered(self) -> Iterator[P]:
        """The parts registered so far (the built-ins only once looked up), without loading any."""
        return iter(list(self._parts.values()))
