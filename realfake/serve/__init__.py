"""`realfake serve`: a local web page and JSON API over `realfake predict` (docs/serve.md)."""
