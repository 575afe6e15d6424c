"""Record stores: in-process, Redis, and the in-process cache in front of Redis."""
