"""Stage download@<source>: fetch a source archive, extract it safely, parse its labels."""
