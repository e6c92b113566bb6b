"""Builds a fresh plugin manager: gantool's essential internals plus the ``gantool`` entry points.

There is no module-level manager: every app (and every test) builds its own, so nothing leaks between
them. A plugin that fails to import, misspells a hook, or breaks while registering its tasks is recorded
and reported in one line; the CLI keeps working so the user can still list and uninstall plugins.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy

from gantool.errors import PluginError, one_line
from gantool.plugin import hookspecs
from gantool.plugin.registry import TaskRegistry, suggest

ENTRY_POINT_GROUP = "gantool"
#: The distribution whose plugins are gantool's own: on a task-name clash, its task keeps the name.
BUILTIN_DISTRIBUTION = "gantool"
PluginStatus = Literal["loaded", "blocked", "error"]


@dataclass
class PluginInfo:
    """What ``gantool plugins list`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: PluginStatus = "loaded"
    error: str | None = None
    tasks: list[str] = field(default_factory=list)
    essential: bool = False

    @property
    def builtin(self) -> bool:
        """A plugin shipped with gantool itself (its task names cannot be taken by another plugin)."""
        return self.essential or self.distribution == BUILTIN_DISTRIBUTION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "tasks": list(self.tasks),
        }


@dataclass
class PluginSystem:
    """A loaded plugin manager with its task registry and the problems met while loading."""

    manager: pluggy.PluginManager
    registry: TaskRegistry
    plugins: list[PluginInfo]

    @property
    def problems(self) -> list[str]:
        """One line per plugin that failed, for the CLI to show as warnings."""
        return [f"plugin {info.name!r}: {info.error}" for info in self.plugins if info.status == "error"]

    def info(self, name: str) -> PluginInfo:
        for info in self.plugins:
            if info.name == name:
                return info
        raise KeyError(name)


def build_plugin_system(
    *,
    blocked: Iterable[str] = (),
    allowed: Iterable[str] | None = None,
    entry_points: Sequence[metadata.EntryPoint] | None = None,
    extra_plugins: Sequence[tuple[str, object]] = (),
    trace: bool = False,
) -> PluginSystem:
    """Create a plugin manager, load plugins one by one, and collect their tasks.

    Args:
        blocked: Entry-point names not to load (``GANTOOL_DISABLE_PLUGINS``).
        allowed: If given, load only these entry-point names (``GANTOOL_PLUGINS``).
        entry_points: Entry points to load instead of the installed ones (tests use this).
        extra_plugins: ``(name, object)`` pairs registered directly, as if they were entry points.
        trace: Print every hook call to stderr (``GANTOOL_TRACE_PLUGINS=1``).
    """
    from gantool import weights  # essential internal plugin: the last-resort weights resolver

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(weights, name="gantool.weights")
    infos = [PluginInfo(name="gantool.weights", module="gantool.weights", essential=True,
                        distribution="gantool", version=_gantool_version())]

    blocked_names = set(blocked) - {info.name for info in infos}  # essential internals cannot be blocked
    allowed_names = set(allowed) if allowed is not None else None
    for name in blocked_names:
        manager.set_blocked(name)

    if entry_points is None:
        entry_points = _installed_entry_points()
    for entry_point in entry_points:
        distribution, version = _distribution_of(entry_point)
        info = PluginInfo(name=entry_point.name, module=entry_point.value, distribution=distribution,
                          version=version)
        infos.append(info)
        if manager.is_blocked(entry_point.name) or (
            allowed_names is not None and entry_point.name not in allowed_names
        ):
            info.status = "blocked"
            continue
        _load_entry_point(manager, entry_point, info)

    for name, plugin in extra_plugins:
        info = PluginInfo(name=name, module=getattr(plugin, "__name__", type(plugin).__name__))
        infos.append(info)
        if manager.is_blocked(name):
            info.status = "blocked"
            continue
        _register_checked(manager, plugin, info)

    if trace:
        manager.trace.root.setwriter(lambda message: sys.stderr.write(message))
        manager.enable_tracing()
    registry = TaskRegistry()
    _collect_tasks(manager, registry, infos)
    return PluginSystem(manager=manager, registry=registry, plugins=infos)


def _installed_entry_points() -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    unique = {ep.name: ep for ep in found}  # the same distribution seen twice on sys.path counts once
    return [unique[name] for name in sorted(unique)]


def _distribution_of(entry_point: metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _gantool_version() -> str:
    from gantool import __version__

    return __version__


def _load_entry_point(manager: pluggy.PluginManager, entry_point: metadata.EntryPoint, info: PluginInfo) -> None:
    try:
        plugin = entry_point.load()
    except (Exception, SystemExit) as error:  # a broken plugin (even one calling sys.exit) must not take the CLI
        info.status = "error"
        what = f"called sys.exit({error.code!r})" if isinstance(error, SystemExit) else one_line(error, location=True)
        info.error = f"failed to import {entry_point.value!r}: {what}"
        return
    _register_checked(manager, plugin, info)


def _register_checked(manager: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    """Register ``plugin``; unregister it again if it implements a hook that does not exist."""
    try:
        manager.register(plugin, name=info.name)
    except (pluggy.PluginValidationError, ValueError) as error:
        info.status = "error"
        info.error = " ".join(str(error).split())  # pluggy's message spans lines; keep all of it on one
        return
    unknown = [caller.name for caller in manager.get_hookcallers(plugin) or [] if not caller.has_spec()]
    if unknown:
        manager.unregister(plugin)
        hints = "; ".join(f"unknown hook {name!r}{suggest(name, hookspecs.HOOK_NAMES)}" for name in unknown)
        info.status = "error"
        info.error = hints


def call_each_plugin(
    manager: pluggy.PluginManager, hook_name: str, make_kwargs: Callable[[str], dict[str, Any]]
) -> Iterator[tuple[str, Any]]:
    """Call one hook plugin by plugin, yielding ``(plugin_name, result)`` after each call.

    Calls go through pluggy (so tracing and opt-in arguments work). An exception is yielded as the result
    instead of being raised, so one broken plugin cannot stop the others; being a generator lets the
    caller check each plugin's effect before the next one runs.
    """
    for implementation in getattr(manager.hook, hook_name).get_hookimpls():
        others = [plugin for plugin in manager.get_plugins() if plugin is not implementation.plugin]
        caller = manager.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            result = caller(**make_kwargs(implementation.plugin_name))
        except (Exception, SystemExit) as error:  # reported by the caller, per plugin
            result = error if isinstance(error, Exception) else PluginError(f"called sys.exit({error.code!r})")
        yield implementation.plugin_name, result


def first_result(manager: pluggy.PluginManager, hook_name: str, kwargs: dict[str, Any],
                 on_error: Callable[[str, BaseException], None]) -> Any:
    """A ``firstresult`` hook's answer, with a plugin whose implementation raises left out instead of failing.

    The hook is called whole, so pluggy's order and wrappers hold exactly (gantool's own resolver is a
    wrapper around everyone else's). When the call raises, each remaining plain implementation is tried on
    its own to find the one that raised; it is reported through ``on_error(plugin_name, error)`` and the
    hook is called again without that plugin. An error no single implementation explains propagates.
    """
    removed: list[object] = []
    while True:
        caller = manager.subset_hook_caller(hook_name, remove_plugins=removed)
        try:
            return caller(**kwargs)
        except (Exception, SystemExit) as error:
            culprit = _raising_plugin(manager, hook_name, kwargs, removed)
            if culprit is None:
                raise
            on_error(manager.get_name(culprit) or repr(culprit), error)
            removed.append(culprit)


def _raising_plugin(manager: pluggy.PluginManager, hook_name: str, kwargs: dict[str, Any],
                    removed: list[object]) -> object | None:
    """The first plugin (in call order) whose plain implementation of ``hook_name`` raises on ``kwargs``."""
    for implementation in reversed(getattr(manager.hook, hook_name).get_hookimpls()):
        if implementation.wrapper or implementation.hookwrapper or implementation.plugin in removed:
            continue
        try:
            implementation.function(*(kwargs[name] for name in implementation.argnames))
        except (Exception, SystemExit):
            return implementation.plugin
    return None


def _collect_tasks(manager: pluggy.PluginManager, registry: TaskRegistry, infos: list[PluginInfo]) -> None:
    """Collect task cards plugin by plugin, so every card is tied to the plugin that registered it."""
    by_name = {info.name: info for info in infos}

    def arguments(plugin: str) -> dict[str, Any]:
        builtin = by_name[plugin].builtin if plugin in by_name else False
        return {"register": lambda spec: registry.add(spec, plugin, builtin=builtin)}

    for plugin, outcome in call_each_plugin(manager, "gantool_register_tasks", arguments):
        if isinstance(outcome, PluginError):
            _mark_error(by_name.get(plugin), str(outcome))
        elif isinstance(outcome, Exception):
            _mark_error(by_name.get(plugin), f"gantool_register_tasks failed: {one_line(outcome, location=True)}")
    for plugin, message in registry.evicted:
        _mark_error(by_name.get(plugin), message)
    for info in infos:
        info.tasks = registry.tasks_of(info.name)


def _mark_error(info: PluginInfo | None, message: str) -> None:
    if info is None:
        return
    info.status = "error"
    info.error = message if info.error is None else f"{info.error}; {message}"


