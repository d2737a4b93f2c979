"""Operating it: `run`, start-up and template checks, health, `check`, `policy check`, demo, keys."""
