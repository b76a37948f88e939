"""The dialogue engine: runs the flows in conversations/*.toml for each user."""
