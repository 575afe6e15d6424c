"""The milter: pymilter callbacks, the per-message runtime, the log line, the supervisor."""
