"""The config file: schema, loading, and secrets."""

from config.loader import ConfigError, load_settings, parse_settings
from config.schema import Settings

__all__ = ["ConfigError", "Settings", "load_settings", "parse_settings"]
