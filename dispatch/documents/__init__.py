"""Documents: one renderer per format (XML, PDF, Excel) behind the Renderer protocol."""
