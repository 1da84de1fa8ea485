"""Development tools run by the build (not part of the nbtrack package)."""
