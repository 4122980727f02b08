"""Offline stack for medsum: AWS emulator wiring, local API gateway, poller and local model endpoint."""
