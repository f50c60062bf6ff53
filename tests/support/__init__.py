"""Real servers for the integration tests and the benches: started here, never mocked."""
