"""The bundled sample data for ``crm-sync demo``; see README.md here for what it holds.

A package (not a plain folder) so that the mbox and ics files ship with the
wheel and can be opened with ``importlib.resources.files("agent.cli.demo_data")``.
"""
