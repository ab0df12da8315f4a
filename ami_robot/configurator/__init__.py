"""configurator."""
