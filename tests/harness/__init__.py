"""Real services for the tests: Postfix, Redis, the milter, sinks, TLS, the stacks."""
