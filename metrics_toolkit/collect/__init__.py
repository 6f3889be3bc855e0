"""Collection: psutil collectors, the daemon, its spool, and the history generator."""
