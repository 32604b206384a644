"""One module per family of methods; each handler reads like the RFC section it implements."""
