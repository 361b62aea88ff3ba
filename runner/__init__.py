"""Executions: the flow model, the plugin registry, rendering and executors."""
