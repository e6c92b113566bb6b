"""``gantool serve``: a local web page for every registered task (optional extra ``gantool[ui]``).

:mod:`~gantool.ui.schema` describes the tasks from the registry (torch-free), :mod:`~gantool.ui.jobs` queues
work one job at a time per device, :mod:`~gantool.ui.runner` runs a job through the engine exactly as the
CLI does, :mod:`~gantool.ui.uploads` checks uploads before anything decodes them and :mod:`~gantool.ui.app`
is the FastAPI app serving the API and the page in ``static/``. See ``docs/ui.md``.
"""
