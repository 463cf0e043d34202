"""One small module per relation protocol: typed reads and writes of its wire format."""
