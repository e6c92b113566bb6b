"""``gantool serve``: start the local web page (the optional ``gantool[ui]`` extra; see docs/ui.md).

Torch- and FastAPI-free until the command runs, so ``gantool --help`` pays nothing for it. It binds to
127.0.0.1 unless told otherwise; another address needs ``--allow-remote``, because the page runs models
for anyone who can reach it and has no login.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from gantool.cli.command import TOOLS_PANEL
from gantool.cli.report import run_reporting_errors
from gantool.errors import UsageError
from gantool.plugin.manager import PluginSystem

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: The ``Host`` headers a loopback server answers (a DNS-rebinding page sends its own host name).
LOCAL_HOST_NAMES = ["localhost", "127.0.0.1", "[::1]", "::1"]
MISSING_EXTRA = 'gantool serve needs the ui extra: pip install "gantool[ui]"'


def is_local(host: str) -> bool:
    """Whether ``host`` only listens on this machine (a loopback address or ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    if not is_local(host) and not allow_remote:
        raise UsageError(f"--host {host} would let other machines run models here (the page has no login); "
                         "pass --allow-remote to do it anyway, or keep the default 127.0.0.1")


def add_serve_command(app: typer.Typer, system: PluginSystem) -> None:
    @app.command("serve", rich_help_panel=TOOLS_PANEL)
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on (loopback only, unless --allow-remote).")]
        = DEFAULT_HOST,
        port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = DEFAULT_PORT,
        open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")]
        = False,
        allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host other machines can "
                                                   "reach (no login: anyone who reaches it can run models).")]
        = False,
    ) -> None:
        """Start a local web page to run every installed task on your images (needs gantool\\[ui])."""

        def body() -> None:
            check_host(host, allow_remote)
            try:
                import uvicorn

                from gantool.ui.app import create_app
            except ImportError as error:
                if (error.name or "").split(".")[0] in ("fastapi", "uvicorn", "multipart", "starlette"):
                    raise UsageError(MISSING_EXTRA) from None
                raise
            url = f"http://{'localhost' if is_local(host) else host}:{port}/"
            typer.echo(f"gantool serve: {url} (Ctrl-C stops it)", err=True)
            if open_browser:
                import threading
                import webbrowser

                threading.Timer(1.0, webbrowser.open, args=(url,)).start()
            hosts = LOCAL_HOST_NAMES if is_local(host) else None
            uvicorn.run(create_app(system, allowed_hosts=hosts), host=host, port=port, log_level="warning")

        run_reporting_errors(body)
