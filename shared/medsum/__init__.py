"""medsum shared layer: models, settings, domain logic, ports and their AWS adapters."""
