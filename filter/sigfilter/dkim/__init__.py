"""DKIM and ARC: signing the rewritten message, and the keys."""
