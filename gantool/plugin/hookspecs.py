"""The hook contract between gantool and its plugins.

Every hook is named ``gantool_<verb>_<noun>`` so it is easy to grep and never collides with another
project's hooks. ``docs/plugins.md`` has one section per hook, and a test keeps the two in sync.

Compatibility policy (pre-1.0):
1. New hook arguments are only ever appended; pluggy passes an implementation only the arguments it
   names, so existing plugins keep working.
2. A renamed or removed argument warns for one minor release (pluggy ``warn_on_impl_args``); a retired
   hook warns through ``warn_on_impl``.
3. ``TaskSpec`` and ``Task`` only gain fields or methods that have defaults.
4. Plugins should pin ``gantool>=0.X,<0.Y`` while gantool is pre-1.0.
5. Each plugin is checked as it loads: an implementation of a hook that does not exist (a typo) is
   reported by name, with a suggestion, and the plugin is left out.

Implementations must not give their parameters default values.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from gantool.plugin.spec import TaskSpec

PROJECT_NAME = "gantool"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register the tasks this plugin provides.

    Call ``register(spec)`` once per ``TaskSpec``. Keep this cheap: it runs on every CLI start, so build
    the card here and leave torch and the networks to ``spec.implementation``.

    :param register: Adds one task card to the registry. Two plugins registering the same task name is
        an error that names both.

    Added in 0.1.

    Example::

        @hookimpl
        def gantool_register_tasks(register):
            register(TaskSpec(name="sharpen", verb="sharpen", summary="Sharpen photos.",
                              implementation="gantool_sharpen.task:Sharpen"))
    """


@hookspec
def gantool_register_commands(app: typer.Typer) -> None:
    """Add extra CLI commands (tools that are not tasks) to the ``gantool`` app.

    Runs after the task verbs are built. Use ``app.command()`` or ``app.add_typer(...,
    rich_help_panel="Plugins")``. Import heavy modules inside the command body, never at module top.

    :param app: The root ``typer.Typer`` application being built.

    Added in 0.1.

    Example::

        @hookimpl
        def gantool_register_commands(app):
            @app.command(rich_help_panel="Plugins")
            def hello(name: str = "world"):
                print(f"hello {name}")
    """


@hookspec(firstresult=True)
def gantool_resolve_weights(task: TaskSpec, name: str) -> Path | None:
    """Find the weights file for a model name (``--model NAME`` or a task's default weights).

    First non-None result wins. Return ``None`` to mean "not mine, ask the next plugin". gantool's own
    resolver answers after the plugins' ordinary implementations (paths, then ``$GANTOOL_MODELS``); the
    ``trylast`` ones come after it: plugins' bundled models (:func:`gantool.weights.package_models`) and
    last the user cache. A plugin can resolve names from its own artifact store, or wrap this hook
    (``wrapper=True``) to verify hashes.

    :param task: The task that needs weights.
    :param name: The model name asked for, e.g. ``"superres-x4"``.
    :return: Path of an existing ``.safetensors`` file, or ``None``.

    Added in 0.1.

    Example::

        @hookimpl
        def gantool_resolve_weights(task, name):
            candidate = Path("/opt/company-models") / f"{name}.safetensors"
            return candidate if candidate.is_file() else None
    """


HOOK_NAMES: tuple[str, ...] = ("gantool_register_tasks", "gantool_register_commands", "gantool_resolve_weights")
