"""The plugin framework, torch-free: hooks, task cards, the Task base class, options, registry, manager."""
