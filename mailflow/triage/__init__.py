"""Before deciding: automatic mail and bounces, Migraciones' mail, which case a message names."""
