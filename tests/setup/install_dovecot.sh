#!/usr/bin/env bash
# Install Debian's Dovecot IMAP server for the IMAP integration tests.
# Idempotent: does nothing when `dovecot` is already on PATH. Needs root.
set -euo pipefail

if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends dovecot-imapd; then
    apt-get update
    apt-get install -y --no-install-recommends dovecot-imapd
fi
