"""Operating the service: doctor, health probes, stats, metrics."""
