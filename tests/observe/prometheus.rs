//! Prometheus and Grafana files against a real pacer (and a real Prometheus where installed).
