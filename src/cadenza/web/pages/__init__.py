"""The dashboard's pages, one module per area; each handler reads through the catalogue."""
