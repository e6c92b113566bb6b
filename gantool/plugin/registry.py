"""The table of registered tasks, built fresh for each app from the plugins' task cards."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from gantool.errors import PluginError, UsageError
from gantool.plugin.spec import TaskSpec


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """A ``" (did you mean 'x'?)"`` hint for a mistyped name, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class TaskRegistry:
    """Task cards by name, remembering which plugin registered each one.

    A second registration of a taken name raises ``PluginError`` naming both plugins, and the name is
    remembered as conflicting, so that using it later fails with the same message instead of silently
    running whichever plugin loaded first. A built-in task (registered by a plugin shipped with gantool)
    always keeps its name: another plugin claiming it is refused, whichever loaded first.
    """

    _specs: dict[str, TaskSpec] = field(default_factory=dict)
    _owners: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    _builtin: set[str] = field(default_factory=set)
    #: ``(plugin, message)`` for third-party plugins whose task a built-in one took back.
    evicted: list[tuple[str, str]] = field(default_factory=list)

    def add(self, spec: TaskSpec, plugin: str, *, builtin: bool = False) -> None:
        """Register ``spec`` on behalf of ``plugin``; a taken name raises ``PluginError``, except that a
        built-in task takes its name back from a third-party plugin (recorded in :attr:`evicted`)."""
        if not isinstance(spec, TaskSpec):
            raise PluginError(f"plugin {plugin!r} registered {spec!r}, which is not a gantool.TaskSpec")
        taken = self._owners.get(spec.name)
        if taken is not None and (spec.name in self._builtin) != builtin:
            intruder = plugin if spec.name in self._builtin else taken
            message = (f"plugin {intruder!r} registers task {spec.name!r}, a name of a gantool built-in task; "
                       f"its task is ignored (the plugin must rename it)")
            if not builtin:
                raise PluginError(message)
            self.evicted.append((taken, message))
        elif spec.name in self._specs:
            message = (
                f"task {spec.name!r} is registered by two plugins, {self._owners[spec.name]!r} and {plugin!r}; "
                f"uninstall one, or block it with GANTOOL_DISABLE_PLUGINS={plugin}"
            )
            self.conflicts[spec.name] = message
            raise PluginError(message)
        self._specs[spec.name] = spec
        self._owners[spec.name] = plugin
        if builtin:
            self._builtin.add(spec.name)

    def get(self, name: str) -> TaskSpec:
        """The card for ``name``; an unknown or conflicting name raises a one-line error."""
        if name in self.conflicts:
            raise PluginError(self.conflicts[name])
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none (is a plugin installed?)"
            raise UsageError(f"unknown task {name!r}{suggest(name, self.names())}; known tasks: {known}") from None

    def owner(self, name: str) -> str:
        """Name of the plugin that registered task ``name``."""
        return self._owners[name]

    def names(self) -> list[str]:
        """Registered task names, sorted."""
        return sorted(self._specs)

    def specs(self) -> list[TaskSpec]:
        """Registered task cards, sorted by name."""
        return [self._specs[name] for name in self.names()]

    def tasks_of(self, plugin: str) -> list[str]:
        """Names of the tasks a plugin registered."""
        return sorted(name for name, owner in self._owners.items() if owner == plugin)

    def by_verb(self) -> dict[str, list[TaskSpec]]:
        """Task cards grouped by CLI verb (tasks without a verb are left out)."""
        groups: dict[str, list[TaskSpec]] = {}
        for spec in self.specs():
            if spec.verb is not None:
                groups.setdefault(spec.verb, []).append(spec)
        return groups

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)
