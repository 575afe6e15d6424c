"""sigfilter: server-side email signatures spliced into outbound mail byte-exactly."""

__version__ = "0.1.0"
