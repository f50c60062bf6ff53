"""Microsoft 365 through Microsoft Graph: Outlook mail and calendars.

``auth`` gets tokens from the Microsoft identity platform (MSAL), ``errors``
reads Graph's failures, ``graph`` is the HTTP client with retries and JSON
batching, ``mail`` and ``calendar`` are the connectors.
"""
