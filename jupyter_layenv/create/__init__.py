"""Creating layered environments: the builder (virtualenv), the installers (uv, pip) and the job queue."""
