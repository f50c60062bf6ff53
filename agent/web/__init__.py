"""The web app: pages, the JSON API and sign-in, over the same database and config as the agent.

Every read goes through ``storage``'s queries with a
:class:`~storage.visibility.Viewer`; this package only decides who the
viewer is and how the answer looks.
"""
