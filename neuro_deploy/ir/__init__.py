"""Graph IR of neuro-deploy: ops as typed dataclasses, edges as plain connections."""
