"""Benchmarks of davserver beside wsgidav and Apache httpd mod_dav_fs; see bench/run.py."""
