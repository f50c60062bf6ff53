"""Fakes that speak the real protocols of crm-sync's remote services, over loopback sockets."""
