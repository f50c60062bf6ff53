"""The CLI's commands, one module per group; ``agent.cli`` assembles them."""
