"""Runnable LENS processes: thin wiring of the ``lens`` core to Kafka and the model server."""
